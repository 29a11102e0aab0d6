"""DropoutNet (Volkovs, Yu, Poutanen, "DropoutNet: Addressing Cold Start in Recommender
Systems", NeurIPS 2017).

Inputs are pretrained preference vectors (here frozen MF-BPR: user ``U_u``, item ``V_i``) and
item content ``phi_i``. Two towers ``f_U(U_u)`` and ``f_V([V_i, phi_i])`` are trained to
reproduce the pretrained scores, ``min sum (U_u . V_i - f_U(U_u) . f_V(V_i, phi_i))^2``,
while input dropout sets ``V_i`` to zero for a fraction ``dropout`` of the training items, so
the item tower learns to work from content alone. At inference cold items (no training
interactions) enter with ``V_i = 0``; warm items with their vector. As in the reference code,
the preference inputs are standardised per column (over non-zero rows, clipped at 5 std) while
the regression targets stay the raw teacher scores. Training pairs are each
training edge plus one sampled negative per edge (the paper samples user-item pairs from the
pretrained model's scores; the relevance of (u, i) to the objective comes from the teacher).
Users have no content in graphrec data, so the user tower sees ``U_u`` only.
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
    "dropout": 0.5,  # probability that an item's preference input is zeroed in training
    "standardize": True,  # reference preprocessing: preference inputs standardised per column, clipped at 5 std
    "teacher": {},  # MF-BPR parameters of the pretrained preference vectors (when no teacher is given)
}


def standardize(x: torch.Tensor, clip: float = 5.0) -> torch.Tensor:
    """Column-wise standardisation over the non-zero rows, clipped to +-clip (DropoutNet's
    ``prep_standardize``); all-zero rows (items without a preference vector) stay zero. Shapes: (N, d)"""
    nz = x.abs().sum(1) > 0
    out = torch.zeros_like(x)
    if nz.any():
        mu, sd = x[nz].mean(0), x[nz].std(0).clamp_min(1e-12)
        out[nz] = ((x[nz] - mu) / sd).clamp(-clip, clip)
    return out


class DropoutNet(nn.Module):
    """User and item towers over preference (+ content) inputs.

    Args:
        pref_dim: size of the pretrained preference vectors.
        content_dim: size of the item content features.
        hidden / dim: tower hidden and output sizes.

    Shapes:
        encode_users: (B, pref_dim) -> (B, dim)
        encode_items: (B, pref_dim), (B, content_dim) -> (B, dim)
    """

    def __init__(self, pref_dim: int, content_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.user = Tower(pref_dim, hidden, dim)
        self.item = Tower(pref_dim + content_dim, hidden, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.user.reset_parameters()
        self.item.reset_parameters()

    def encode_users(self, pref: torch.Tensor) -> torch.Tensor:
        return self.user(pref)

    def encode_items(self, pref: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return self.item(torch.cat([pref, content], 1))


def fit_dropoutnet(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
                   validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit DropoutNet on ``data.train``; early stopping on cold-validation NDCG@20.

    ``teacher``: frozen (user, item) preference vectors (default: an MF-BPR with ``params["teacher"]``).
    """
    p = resolve_params("dropoutnet", DEFAULTS, params)
    U, V = teacher_vectors(data, teacher, p["teacher"], seed, validate, progress)  # (U, d), (N, d); cold rows zero
    Uin, Vin = (standardize(U), standardize(V)) if p["standardize"] else (U, V)  # tower inputs; targets stay U.V
    gen = generator(seed)
    X = content_features(data)  # (N, D)
    warm = train_item_mask(data)
    model = DropoutNet(U.shape[1], X.shape[1], p["hidden"], p["dim"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    sampler = BPRSampler(data, gen)

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        uu, ii = torch.cat([u, u]), torch.cat([i, j])  # positives and negatives (2B,)
        target = (U[uu] * V[ii]).sum(1)
        # input dropout per distinct item of the batch (as the reference code drops items)
        keep = (torch.rand(data.num_items, 1, generator=gen) >= p["dropout"]).float()
        items = per_unique(lambda k: model.encode_items(Vin[k] * keep[k], X[k]), ii)  # (2B, dim)
        pred = (model.encode_users(Uin[uu]) * items).sum(1)
        return (pred - target).pow(2).mean()

    def snapshot() -> EmbeddingScorer:
        users = apply_in_batches(model.user, Uin)
        items = apply_in_batches(model.item, torch.cat([Vin * warm.unsqueeze(1).float(), X], 1))
        return EmbeddingScorer(users, items)

    return fit_scorer(BatchLoss(loss, model), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "cold",
                      p, progress, desc="dropoutnet")
