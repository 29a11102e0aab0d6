"""Heater (Zhu, Wang, Caverlee et al., "Recommendation for New Users and New Items via
Randomized Training and Mixture-of-Experts Transformation", SIGIR 2020), item cold start.

Pretrained preference vectors (frozen MF-BPR ``P_u``, ``Q_i``) and item content ``x_i``:

* Mixture-of-experts content transform ``Phi(x_i) = sum_k g_k(x_i) W_k x_i`` with a softmax
  gate ``g``; a similarity constraint ``L_s = ||Phi(x_i) - Q_i||^2`` pulls it onto the
  collaborative vector of warm items.
* Randomized training: with probability ``p_random`` an item's input is ``Phi(x_i)``
  instead of ``Q_i``, so the downstream transform learns to handle content-only items.
* Latent transforms ``f_U(P_u)``, ``f_I(item input)``; the prediction ``f_U . f_I``
  regresses the pretrained score ``P_u . Q_i`` (squared error), plus ``alpha * L_s``.

At inference warm items enter as ``Q_i`` and cold items as ``Phi(x_i)``. Users have no content
in graphrec data, so the user side is ``P_u`` only (no user-side experts).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, EmbeddingScorer, Validator, content_features, fit_scorer,
                                       generator, per_unique, resolve_params, train_item_mask)
from graphrec.baselines.mf_bpr import teacher_vectors
from graphrec.baselines.towers import Tower, apply_in_batches
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "dim": 64,
    "hidden": 256,
    "experts": 5,
    "p_random": 0.5,  # probability of replacing Q_i by Phi(x_i) in training
    "alpha": 1.0,  # weight of the similarity constraint
    "teacher": {},
}


class MixtureOfExperts(nn.Module):
    """``Phi(x) = sum_k softmax(G x)_k tanh(W_k x)`` (Heater's content transformation).

    Shapes:
        forward: (B, in_dim) -> (B, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, experts: int) -> None:
        super().__init__()
        self.experts = nn.Linear(in_dim, out_dim * experts)
        self.gate = nn.Linear(in_dim, experts)
        self.out_dim, self.k = out_dim, experts
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.experts.reset_parameters()
        self.gate.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.experts(x).view(-1, self.k, self.out_dim)  # (B, K, d)
        g = torch.softmax(self.gate(x), -1).unsqueeze(-1)  # (B, K, 1)
        return (g * e).sum(1)


class Heater(nn.Module):
    """Content MoE plus user/item latent transforms.

    Shapes:
        content: (B, D) -> (B, pref_dim); encode_users: (B, pref_dim) -> (B, dim);
        encode_items: (B, pref_dim) -> (B, dim)
    """

    def __init__(self, pref_dim: int, content_dim: int, hidden: int, dim: int, experts: int) -> None:
        super().__init__()
        self.content = MixtureOfExperts(content_dim, pref_dim, experts)
        self.user = Tower(pref_dim, hidden, dim, batch_norm=False)
        self.item = Tower(pref_dim, hidden, dim, batch_norm=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.content, self.user, self.item):
            m.reset_parameters()

    def encode_users(self, pref: torch.Tensor) -> torch.Tensor:
        return self.user(pref)

    def encode_items(self, item_input: torch.Tensor) -> torch.Tensor:
        return self.item(item_input)


def fit_heater(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
               validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit Heater on ``data.train``; early stopping on cold-validation NDCG@20.

    ``teacher``: frozen (user, item) preference vectors (default: an MF-BPR with ``params["teacher"]``).
    """
    p = resolve_params("heater", DEFAULTS, params)
    P, Q = teacher_vectors(data, teacher, p["teacher"], seed, validate, progress)
    gen = generator(seed)
    X = content_features(data)
    warm = train_item_mask(data)
    model = Heater(P.shape[1], X.shape[1], p["hidden"], p["dim"], p["experts"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    sampler = BPRSampler(data, gen)

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        uu, ii = torch.cat([u, u]), torch.cat([i, j])  # (2B,)
        target = (P[uu] * Q[ii]).sum(1)
        phi = per_unique(lambda k: model.content(X[k]), ii)  # (2B, d)
        use_phi = (torch.rand(len(ii), 1, generator=gen) < p["p_random"]).float()
        item_in = use_phi * phi + (1 - use_phi) * Q[ii]
        pred = (model.encode_users(P[uu]) * model.encode_items(item_in)).sum(1)
        sim = (phi - Q[ii]).pow(2).sum(1).mean()
        return (pred - target).pow(2).mean() + p["alpha"] * sim

    def snapshot() -> EmbeddingScorer:
        phi = apply_in_batches(model.content, X)
        item_in = torch.where(warm.unsqueeze(1), Q, phi)
        return EmbeddingScorer(apply_in_batches(model.user, P), apply_in_batches(model.item, item_in))

    return fit_scorer(BatchLoss(loss, model), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "cold",
                      p, progress, desc="heater")
