"""Content kNN fused with a content-predicted popularity prior.

Cosine scores between a user profile and an item cannot say how popular a new item will be;
its content can, in part (year, genre, cast). A ridge regression from the train-centred item
features to ``log(1 + train interactions)``, fitted on warm items only, predicts that prior for
every item; the score is ``cos(profile_u, x_i) / s_knn + weight * (prior_i - mean) / s_prior``
(both terms standardised over warm items), with the fusion ``weight`` and the ridge strength
tuned on validation. ``weight = 0`` is content kNN itself.
"""

from __future__ import annotations

from typing import Any

import torch

from graphrec.baselines.common import EmbeddingScorer, content_features, resolve_params, train_item_counts, train_item_mask
from graphrec.baselines.content_knn import modality_weights
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {"weight": 1.0, "ridge": 10.0, "text_weight": 0.5}


def popularity_prior(x: torch.Tensor, counts: torch.Tensor, warm: torch.Tensor, ridge: float) -> torch.Tensor:
    """Ridge-regressed ``log(1 + count)`` from content, fitted on ``warm`` rows. Shapes: (N, D) -> (N,)"""
    y = torch.log1p(counts[warm]).double()
    xw = x[warm].double()
    mu = y.mean()
    a = xw.T @ xw + ridge * torch.eye(x.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, xw.T @ (y - mu))
    return (x.double() @ w + mu).float()


def fit_knn_pop(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                validate=None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Content kNN + popularity prior (deterministic; ``seed`` unused)."""
    p = resolve_params("knn_pop", DEFAULTS, params)
    if p["ridge"] <= 0:
        raise ValueError(f"knn_pop: ridge must be > 0, got {p['ridge']}")
    x = content_features(data, weights=modality_weights(data, p["text_weight"]))  # (N, D)
    warm = train_item_mask(data)
    u, i = data.train
    prof = torch.nn.functional.normalize(torch.zeros(data.num_users, x.shape[1]).index_add_(0, u, x[i]), dim=1)
    prior = popularity_prior(x, train_item_counts(data), warm, float(p["ridge"]))
    s_knn = (prof @ x[warm].T).std().clamp_min(1e-12)  # scale of the kNN scores over warm items
    z = (prior - prior[warm].mean()) / prior[warm].std().clamp_min(1e-12)
    users = torch.cat([prof / s_knn, torch.ones(data.num_users, 1)], 1)
    items = torch.cat([x, float(p["weight"]) * z.unsqueeze(1)], 1)
    return EmbeddingScorer(users, items)
