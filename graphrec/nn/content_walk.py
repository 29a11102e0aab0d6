"""Learned content walk: the content walk with a metric trained to predict held-out interactions.

The content walk of :class:`~graphrec.nn.content_scores.ContentScores` scores an item by the
cosine between a user's content profile (the normalised sum of the content vectors of the user's
train items) and the item's content vector: every direction of the content space counts the
same. This term learns which directions predict what a user takes next:

    score(u, i) = cos(profile_u A, x_i B) / T + x_i . w

With item codes (``codes``, ``model.walk_codes``), the user side also sums a learned code ``e_h`` of
each of the user's train items: ``cos(profile_u A + sum_h e_h / |sum_h x_h|, x_i B)``. The codes are a
Mult-DAE encoder's item embeddings: what taking item ``h`` says about a user's taste beyond its content
(items taken by the same people with different plots). Only the user side has them; the item
side stays content alone, so a cold item is scored exactly as before and a new item added at
serve time equals its cold catalogue self. They start at 0 (the walk without codes).

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
    attach: item_vec (I, F), train_edges (2, E) -> buffers; codes (I, k) (zero for items without
    train interactions)
    scores: users (B,) -> (B, I); serving_users: (U, k + 1); serving_items: (N, F) -> (N, k + 1)
"""

from __future__ import annotations

import torch
from torch import nn

from graphrec.losses import multinomial_loss


def user_side(profile: torch.Tensor, a: torch.Tensor, temperature: float, codes: torch.Tensor | None = None) -> torch.Tensor:
    """``normalize(profile A [+ codes]) / T``. Shapes: (B, F), (F, k)[, (B, k)] -> (B, k)"""
    z = profile @ a
    return nn.functional.normalize(z if codes is None else z + codes, dim=1) / temperature


def _profile(sel: torch.Tensor, x: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The normalised content profile of each row's selected items and their summed codes on the same
    scale (divided by the norm of the content sum). Shapes: sel (B, S), x (S, F), e (S, k) -> (B, F), (B, k)"""
    raw = sel @ x
    n = raw.norm(dim=1, keepdim=True).clamp_min(1e-12)  # as nn.functional.normalize
    return raw / n, (sel @ e) / n if e is not None else None


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
        batch of users at a time); init: (F, k) start of A and B; codes_of: (S,) the warm items'
        catalogue positions when the walk has item codes (None: no codes), num_items: the catalogue size.
    """

    def __init__(self, xw: torch.Tensor, interactions: torch.Tensor, init: torch.Tensor, temperature: float,
                 keep: float, codes_of: torch.Tensor | None = None, num_items: int = 0) -> None:
        super().__init__()
        self.register_buffer("xw", xw)
        self.register_buffer("interactions", interactions)
        self.a, self.b = nn.Parameter(init.clone()), nn.Parameter(init.clone())
        self.w = nn.Parameter(torch.zeros(xw.shape[1], device=xw.device))
        self.e = nn.Parameter(torch.zeros(xw.shape[0], init.shape[1], device=xw.device)) if codes_of is not None else None
        self.register_buffer("codes_of", codes_of)
        self.temperature, self.keep, self.num_items = temperature, keep, num_items

    def forward(self, users: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
        r = self.interactions.index_select(0, users).to_dense()  # (B, S)
        profile_items = (draw < self.keep) & r.bool()
        prof, codes = _profile(profile_items.to(r.dtype), self.xw, self.e)  # (B, F), (B, k)
        items, bias = item_side(self.xw, self.b, self.w)
        logits = user_side(prof, self.a, self.temperature, codes) @ items.T + bias  # (B, S)
        return multinomial_loss(logits, r * (~profile_items).to(r.dtype), profile_items)

    def state(self) -> tuple[torch.Tensor, ...]:
        """``(A, B, w)``, and the codes over the catalogue (I, k) when the walk has them."""
        out = (self.a.detach().clone(), self.b.detach().clone(), self.w.detach().clone())
        if self.e is None:
            return out
        codes = torch.zeros(self.num_items, self.e.shape[1], device=self.e.device)
        return out + (codes.index_copy_(0, self.codes_of, self.e.detach()),)


class LearnedWalk(nn.Module):
    """The learned content walk (see the module docstring).

    Args:
        in_dim: width ``F`` of the content vectors.
        dim: width ``k`` of the learned space (0 or >= ``in_dim``: ``in_dim``, identity start).
        temperature: ``T``.
        num_codes: catalogue size when the user side has item codes (0 = none; see the module docstring).
    """

    def __init__(self, in_dim: int, dim: int = 0, temperature: float = 0.05, num_codes: int = 0) -> None:
        super().__init__()
        self.in_dim, self.temperature = in_dim, temperature
        self.dim = in_dim if dim <= 0 or dim >= in_dim else dim
        self.register_buffer("a", torch.zeros(in_dim, self.dim))
        self.register_buffer("b", torch.zeros(in_dim, self.dim))
        self.register_buffer("w", torch.zeros(in_dim))
        self.register_buffer("codes", torch.zeros(num_codes, self.dim) if num_codes > 0 else None)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("weight", torch.zeros(()))  # calibrated
        for name in ("item_vec", "profile", "profile_norm", "edges", "user_side", "item_side", "bias"):
            self.register_buffer(name, None, persistent=False)

    def reset_parameters(self) -> None:
        for name in ("a", "b", "w", "weight") + (("codes",) if self.codes is not None else ()):
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
        self.profile_norm, self.edges = prof.norm(dim=1, keepdim=True).clamp_min(1e-12), train_edges
        self._refresh()

    def _refresh(self) -> None:
        if self.profile is None or not bool(self.fitted):
            self.user_side = self.item_side = self.bias = None
            return
        codes = None
        if self.codes is not None:  # the summed codes of each user's train items, on the profile's scale
            u, i = self.edges[0], self.edges[1]
            codes = torch.zeros(self.profile.shape[0], self.dim, device=self.profile.device).index_add_(0, u, self.codes[i])
            codes = codes / self.profile_norm
        self.user_side = user_side(self.profile, self.a, self.temperature, codes)
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
        codes_of = widx if self.codes is not None else None
        return WalkTask(xw, inter, init, self.temperature, keep, codes_of, warm.shape[0])

    @torch.no_grad()
    def install(self, state: tuple[torch.Tensor, ...]) -> None:
        """Set ``(A, B, w[, codes])`` (a :meth:`WalkTask.state`); the walk is fitted from now on."""
        if (len(state) == 4) != (self.codes is not None):
            raise ValueError(f"LearnedWalk.install: a state of {len(state)} tensors for a walk "
                             f"{'with' if self.codes is not None else 'without'} item codes")
        for dst, src in zip((self.a, self.b, self.w, self.codes), state):
            dst.copy_(src)
        self.fitted.fill_(True)
        self._refresh()
