"""Learned content walk: the content walk with a metric trained to predict held-out interactions.

The content walk of :class:`~graphrec.nn.content_scores.ContentScores` scores an item by the
cosine between a user's content profile (the normalised sum of the content vectors of the user's
train items) and the item's content vector: every direction of the content space counts the
same. This term learns which directions predict what a user takes next:

    score(u, i) = cos(profile_u A, x_i B) / T + x_i . w

``A``, ``B`` (F, k) map the profile and the item into a space where co-consumption is a small
angle; ``x_i . w`` is a content bias (how much any user takes an item like this; no item ID is
involved, so it exists for a cold item). At step 0, ``A = B`` = identity (or the warm items'
PCA basis when ``k < F``) and ``w = 0``: the plain content walk.

Training imitates the cold start it serves (a multinomial likelihood over items as in Mult-DAE,
Liang et al., WWW 2018, with a content encoder instead of item IDs): each step splits every
batch user's train items at random into a profile part and a target part; the targets are
scored by the profile part alone, so a target is never in the profile that scores it, as a
cold item never is; a full softmax over the warm items with the profile items masked out
predicts them. Fitted after the GNN by :func:`graphrec.recipes.walk.fit_walk` with the one
training loop (no gradient reaches the GNN), selected on cold validation. The trained ``A``, ``B``, ``w`` are persistent buffers (they travel
in checkpoints); profiles and item sides are rebuilt from train data by :meth:`attach`.

Shapes:
    attach: item_vec (I, F), train_edges (2, E) -> buffers
    scores: users (B,) -> (B, I); serving_users: (U, k + 1); serving_items: (N, F) -> (N, k + 1)
"""

from __future__ import annotations

import torch
from torch import nn

from graphrec.losses import multinomial_loss


def user_side(profile: torch.Tensor, a: torch.Tensor, temperature: float) -> torch.Tensor:
    """``normalize(profile A) / T``. Shapes: (B, F), (F, k) -> (B, k)"""
    return nn.functional.normalize(profile @ a, dim=1) / temperature


def item_side(x: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(normalize(x B), x . w)``. Shapes: (N, F) -> (N, k), (N,)"""
    return nn.functional.normalize(x @ b, dim=1), x @ w


class WalkTask(nn.Module):
    """Training task of the walk for :func:`graphrec.training.loop.fit`: ``(users, draw)`` -> loss.

    ``draw`` (B, S) uniform numbers from the batch source: a user's train item goes to the profile
    where its draw is below ``keep``, else it is a target (:func:`graphrec.losses.multinomial_loss`
    over the warm items, the profile items masked out).

    Args:
        xw: (S, F) the warm items' vectors; interactions: (U, S) sparse 0/1 train matrix (dense one
        batch of users at a time); init: (F, k) start of A and B.
    """

    def __init__(self, xw: torch.Tensor, interactions: torch.Tensor, init: torch.Tensor, temperature: float,
                 keep: float) -> None:
        super().__init__()
        self.register_buffer("xw", xw)
        self.register_buffer("interactions", interactions)
        self.a, self.b = nn.Parameter(init.clone()), nn.Parameter(init.clone())
        self.w = nn.Parameter(torch.zeros(xw.shape[1], device=xw.device))
        self.temperature, self.keep = temperature, keep

    def forward(self, users: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
        r = self.interactions.index_select(0, users).to_dense()  # (B, S)
        profile_items = (draw < self.keep) & r.bool()
        prof = nn.functional.normalize(profile_items.to(r.dtype) @ self.xw, dim=1)  # (B, F)
        items, bias = item_side(self.xw, self.b, self.w)
        logits = user_side(prof, self.a, self.temperature) @ items.T + bias  # (B, S)
        return multinomial_loss(logits, r * (~profile_items).to(r.dtype), profile_items)

    def state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.a.detach().clone(), self.b.detach().clone(), self.w.detach().clone()


class LearnedWalk(nn.Module):
    """The learned content walk (see the module docstring).

    Args:
        in_dim: width ``F`` of the content vectors.
        dim: width ``k`` of the learned space (0 or >= ``in_dim``: ``in_dim``, identity start).
        temperature: ``T``.
    """

    def __init__(self, in_dim: int, dim: int = 0, temperature: float = 0.05) -> None:
        super().__init__()
        self.in_dim, self.temperature = in_dim, temperature
        self.dim = in_dim if dim <= 0 or dim >= in_dim else dim
        self.register_buffer("a", torch.zeros(in_dim, self.dim))
        self.register_buffer("b", torch.zeros(in_dim, self.dim))
        self.register_buffer("w", torch.zeros(in_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("weight", torch.zeros(()))  # calibrated
        for name in ("item_vec", "profile", "user_side", "item_side", "bias"):
            self.register_buffer(name, None, persistent=False)

    def reset_parameters(self) -> None:
        for name in ("a", "b", "w", "weight"):
            getattr(self, name).zero_()
        self.fitted.fill_(False)

    @property
    def active(self) -> bool:
        return bool(self.fitted) and bool(self.weight != 0)

    @torch.no_grad()
    def attach(self, item_vec: torch.Tensor, train_edges: torch.Tensor, num_users: int) -> None:
        """User profiles (normalised sums of train items' vectors) and the cached sides. Deterministic."""
        self.item_vec = item_vec.float()
        u, i = train_edges[0], train_edges[1]
        prof = torch.zeros(num_users, item_vec.shape[1], device=item_vec.device).index_add_(0, u, self.item_vec[i])
        self.profile = nn.functional.normalize(prof, dim=1)
        self._refresh()

    def _refresh(self) -> None:
        if self.profile is None or not bool(self.fitted):
            self.user_side = self.item_side = self.bias = None
            return
        self.user_side = user_side(self.profile, self.a, self.temperature)
        self.item_side, self.bias = item_side(self.item_vec, self.b, self.w)


    @torch.no_grad()
    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """Unweighted term. (B,) -> (B, I)"""
        return self.user_side[users] @ self.item_side.T + self.bias.unsqueeze(0)

    @torch.no_grad()
    def serving_users(self) -> torch.Tensor:
        """``[weight * user side, weight]``. (U, k + 1)"""
        n = self.profile.shape[0]
        if self.user_side is None:
            return torch.zeros(n, self.dim + 1, device=self.profile.device)
        return self.weight * torch.cat([self.user_side, torch.ones(n, 1, device=self.profile.device)], 1)

    @torch.no_grad()
    def serving_items(self, x: torch.Tensor) -> torch.Tensor:
        """``[item side, bias]`` of (new) items from their content vectors. (N, F) -> (N, k + 1)"""
        if not bool(self.fitted):
            return torch.zeros(x.shape[0], self.dim + 1, device=x.device)
        side, bias = item_side(x.float(), self.b, self.w)
        return torch.cat([side, bias.unsqueeze(1)], 1)

    # ------------------------------------------------------------------ training
    def task(self, warm: torch.Tensor, train_edges: torch.Tensor, keep: float) -> WalkTask:
        """A :class:`WalkTask` over the warm items, starting from the identity (``k = F``) or the
        warm items' PCA basis (after :meth:`attach`)."""
        if self.item_vec is None:
            raise RuntimeError("LearnedWalk.task: call attach() first")
        dev = self.item_vec.device
        widx = torch.nonzero(warm).flatten()
        xw = self.item_vec[widx]  # (S, F)
        col = torch.full((warm.shape[0],), -1, dtype=torch.long, device=dev)
        col[widx] = torch.arange(len(widx), device=dev)
        idx = torch.stack([train_edges[0], col[train_edges[1]]])
        shape = (self.profile.shape[0], len(widx))
        inter = torch.sparse_coo_tensor(idx, torch.ones(idx.shape[1], device=dev), shape, check_invariants=True).coalesce()
        inter = torch.sparse_coo_tensor(inter.indices(), torch.ones_like(inter.values()), shape,  # (U, S) 0/1
                                        check_invariants=True).coalesce()
        if self.dim == self.in_dim:
            init = torch.eye(self.in_dim, device=dev)
        else:
            init = torch.linalg.svd(xw - xw.mean(0), full_matrices=False)[2][: self.dim].T.contiguous()
        return WalkTask(xw, inter, init, self.temperature, keep)

    @torch.no_grad()
    def install(self, state: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """Set ``(A, B, w)`` (a :meth:`WalkTask.state`); the walk is fitted from now on."""
        for dst, src in zip((self.a, self.b, self.w), state):
            dst.copy_(src)
        self.fitted.fill_(True)
        self._refresh()
