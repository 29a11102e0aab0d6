"""Item-item content kNN: the first content recommender a practitioner tries.

``score(u, i) = sum_{j in H(u), j in N_k(i)} max(sim(i, j), 0) ** alpha``: every item ``i``
looks at its ``k`` most content-similar warm (train) items ``N_k(i)``; the user's history
``H(u)`` (train interactions) votes through them (Sarwar et al., "Item-based collaborative
filtering", WWW 2001, with content similarities; Lops et al. 2011). Similarities are cosines
of the train-centred, L2-normalised features (:func:`graphrec.baselines.common.content_features`),
modalities mixed with ``text_weight`` when there are two. ``k`` and ``alpha`` are tuned on
validation. Nothing is trained; only train edges are read.
"""

from __future__ import annotations

from typing import Any

import torch

from graphrec.baselines.common import content_features, resolve_params, train_item_mask
from graphrec.baselines.content_knn import modality_weights
from graphrec.data.dataset import RecData
from graphrec.data.edges import csr, gather_rows

DEFAULTS: dict[str, Any] = {"k": 100, "alpha": 1.0, "text_weight": 0.5}


class ItemKNNScorer:
    """Scores from each item's sparse content neighbourhood and the users' train histories.

    Shapes:
        indptr (U+1,), items (E,): train histories (CSR); nb_idx / nb_val (N, k): neighbours
        (warm item indices) and weights; score: (B,) -> (B, N)
    """

    supports_cold = True

    def __init__(self, indptr: torch.Tensor, items: torch.Tensor, nb_idx: torch.Tensor, nb_val: torch.Tensor) -> None:
        self.indptr, self.items, self.nb_idx, self.nb_val = indptr, items, nb_idx, nb_val
        self.num_items = n = nb_idx.shape[0]
        rows = torch.arange(n).repeat_interleave(nb_idx.shape[1])
        # M[i, j] = weight of neighbour j for item i (sparse, N x N with N * k entries)
        self.M = torch.sparse_coo_tensor(torch.stack([rows, nb_idx.reshape(-1)]), nb_val.reshape(-1).float(),
                                         (n, n)).coalesce().to_sparse_csr()

    def state(self) -> dict[str, Any]:
        return {"indptr": self.indptr, "items": self.items, "nb_idx": self.nb_idx, "nb_val": self.nb_val}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ItemKNNScorer":
        return cls(state["indptr"], state["items"], state["nb_idx"], state["nb_val"])

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        rows, its = gather_rows(self.indptr, self.items, users)
        hist = torch.zeros(users.numel(), self.num_items)
        hist[rows, its] = 1.0  # (B, N) train history
        return torch.sparse.mm(self.M, hist.T).T.contiguous()  # s[b, i] = sum_j M[i, j] hist[b, j]


def fit_item_knn(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                 validate=None, progress: bool = True, teacher=None) -> ItemKNNScorer:
    """Build the item-item content kNN scorer (deterministic; ``seed`` unused)."""
    p = resolve_params("item_knn", DEFAULTS, params)
    if p["k"] < 1 or p["alpha"] <= 0:
        raise ValueError(f"item_knn: need k >= 1 and alpha > 0, got k={p['k']}, alpha={p['alpha']}")
    x = content_features(data, weights=modality_weights(data, p["text_weight"]))  # (N, D)
    warm = torch.nonzero(train_item_mask(data)).flatten()  # (W,)
    k = min(int(p["k"]), warm.numel())
    vals, idx = [], []
    for start in range(0, x.shape[0], 2048):
        sim = x[start:start + 2048] @ x[warm].T  # (b, W)
        rows = torch.arange(start, min(start + 2048, x.shape[0]))
        self_pos = torch.searchsorted(warm, rows).clamp(max=warm.numel() - 1)
        is_self = warm[self_pos] == rows
        sim[is_self.nonzero().flatten(), self_pos[is_self]] = float("-inf")  # an item is not its own neighbour
        v, i = sim.topk(k, dim=1)
        vals.append(v.clamp_min(0) ** p["alpha"])
        idx.append(warm[i])
    indptr, items = csr(data.train, data.num_users, data.num_items)
    return ItemKNNScorer(indptr, items, torch.cat(idx), torch.cat(vals))
