"""Two practitioner baselines that carry a trained warm model's CF vectors over to cold items.

* ``content_cf_nb`` (content neighbours' CF vectors, no training): a cold item's vector is the
  similarity-weighted mean of the teacher vectors of its ``k`` most content-similar warm items
  (weights ``softmax(sim / temperature)``); warm items keep their own teacher vector; users are
  the teacher's users. The "content kNN in CF space" of e.g. Volkovs et al.'s ablations and of
  GraphRec's own cold view.
* ``content_cf_reg`` (content -> CF regression tower): an MLP maps content to the teacher's item
  space, fitted on warm items with a squared error to the frozen teacher vectors plus BPR against
  the frozen teacher users (so ranking, not only the vector, is learned); cold items use the
  tower, warm items their teacher vector (the mapping of DeepMusic, van den Oord et al., NeurIPS
  2013, and of the "meta-embedding" cold-start line).

Both need a teacher: the trained warm model's ``(user (U, d), item (N, d))`` vectors (the suite
passes the best warm model on validation); without one they train an MF-BPR first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, EmbeddingScorer, Validator, content_features,
                                       fit_scorer, generator, per_unique, resolve_params, train_item_mask)
from graphrec.baselines.content_knn import modality_weights
from graphrec.baselines.mf_bpr import teacher_vectors
from graphrec.baselines.towers import apply_in_batches
from graphrec.data.dataset import RecData
from graphrec.losses import bpr_loss

NB_DEFAULTS: dict[str, Any] = {"k": 20, "temperature": 0.05, "text_weight": 0.5, "teacher": {}}
REG_DEFAULTS: dict[str, Any] = {**TRAINING_DEFAULTS, "hidden": 512, "dropout": 0.2, "bpr_weight": 1.0, "text_weight": 0.5,
                                "teacher": {}}


def neighbour_vectors(x: torch.Tensor, warm: torch.Tensor, item_vecs: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """Similarity-weighted mean of the ``k`` most similar warm items' vectors (an item never uses itself).

    Shapes:
        x (N, D) normalised content, warm (W,) warm item indices, item_vecs (N, d) -> (N, d)
    """
    k = min(k, warm.numel() - 1)
    out = torch.zeros(x.shape[0], item_vecs.shape[1])
    for s in range(0, x.shape[0], 2048):
        rows = torch.arange(s, min(s + 2048, x.shape[0]))
        sim = x[rows] @ x[warm].T  # (b, W)
        pos = torch.searchsorted(warm, rows).clamp(max=warm.numel() - 1)
        self_ = warm[pos] == rows
        sim[self_.nonzero().flatten(), pos[self_]] = float("-inf")
        v, i = sim.topk(k, dim=1)
        w = torch.softmax(v / temperature, dim=1)  # (b, k)
        out[rows] = (item_vecs[warm[i]] * w.unsqueeze(-1)).sum(1)
    return out


def fit_content_cf_nb(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                      validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Content neighbours' CF vectors (no training beyond the teacher)."""
    p = resolve_params("content_cf_nb", NB_DEFAULTS, params)
    P, Q = teacher_vectors(data, teacher, p["teacher"], seed, validate, progress)
    x = content_features(data, weights=modality_weights(data, p["text_weight"]))
    warm_mask = train_item_mask(data)
    nb = neighbour_vectors(x, torch.nonzero(warm_mask).flatten(), Q, int(p["k"]), float(p["temperature"]))
    return EmbeddingScorer(P, torch.where(warm_mask.unsqueeze(1), Q, nb))


class ContentToCF(nn.Module):
    """``LayerNorm -> Linear -> GELU -> Dropout -> Linear``: content into the teacher's item space."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fit_content_cf_reg(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                       validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Content -> CF regression tower; early stopping on cold-validation NDCG@20."""
    p = resolve_params("content_cf_reg", REG_DEFAULTS, params)
    P, Q = teacher_vectors(data, teacher, p["teacher"], seed, validate, progress)
    gen = generator(seed)
    X = content_features(data, weights=modality_weights(data, p["text_weight"]))
    warm = train_item_mask(data)
    tower = ContentToCF(X.shape[1], p["hidden"], Q.shape[1], p["dropout"])
    opt = torch.optim.Adam(tower.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    sampler = BPRSampler(data, gen)
    scale = Q[warm].pow(2).sum(1).mean().clamp_min(1e-12)  # squared error relative to the vectors' size

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        gij = per_unique(lambda k: tower(X[k]), torch.cat([i, j]))  # (2B, d)
        gi, gj = gij[: len(i)], gij[len(i):]
        reg = ((gi - Q[i]).pow(2).sum(1).mean() + (gj - Q[j]).pow(2).sum(1).mean()) / scale
        return reg + p["bpr_weight"] * bpr_loss((P[u] * gi).sum(1), (P[u] * gj).sum(1))

    def snapshot() -> EmbeddingScorer:
        return EmbeddingScorer(P, torch.where(warm.unsqueeze(1), Q, apply_in_batches(tower, X)))

    return fit_scorer(BatchLoss(loss, tower), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "cold",
                      p, progress, desc="content_cf_reg")
