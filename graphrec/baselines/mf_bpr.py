"""Matrix factorisation trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking
from Implicit Feedback", UAI 2009). Warm only: an item without training interactions has no
learned vector, so ``supports_cold = False`` and such items score below every warm item.

A fitted MF can also serve as the frozen "teacher" / pretrained preference vectors of
DropoutNet, Heater and ALDI (:func:`teacher_vectors`); the suite hands them the best warm
model found on validation instead when there is one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, EmbeddingScorer, Validator, fit_scorer, generator,
                                       resolve_params, train_item_mask)
from graphrec.data.dataset import RecData
from graphrec.losses import bpr_loss

DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TRAINING_DEFAULTS.items() if k != "weight_decay"},
    "dim": 64,
    "lr": 5e-3,
    "reg": 1e-4,  # L2 weight on the batch's embeddings (per example)
    "eval_every": 2,
}


class MF(nn.Module):
    """User and item embedding tables; score = dot product.

    Args:
        num_users / num_items: table sizes.
        dim: embedding size.

    Shapes:
        forward: users (B,), items (B,) -> (B,)
    """

    def __init__(self, num_users: int, num_items: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user(users) * self.item(items)).sum(-1)


def _train_mf(data: RecData, p: dict[str, Any], seed: int, validate: Validator, progress: bool) -> EmbeddingScorer:
    gen = generator(seed)
    model = MF(data.num_users, data.num_items, p["dim"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    sampler = BPRSampler(data, gen)
    valid = train_item_mask(data)

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        eu, ei, ej = model.user(u), model.item(i), model.item(j)
        return bpr_loss((eu * ei).sum(1), (eu * ej).sum(1)) + p["reg"] * (eu.pow(2) + ei.pow(2) + ej.pow(2)).sum(1).mean()

    def snapshot() -> EmbeddingScorer:
        return EmbeddingScorer(model.user.weight, model.item.weight, valid_items=valid, supports_cold=False)

    return fit_scorer(BatchLoss(loss, model), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot, validate, "warm",
                      p, progress, desc="mf_bpr")


def fit_mf_bpr(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
               validate: Validator | None = None, progress: bool = True, teacher=None) -> EmbeddingScorer:
    """Fit MF-BPR on ``data.train``; early stopping on warm-validation NDCG@20.

    Returns:
        an :class:`EmbeddingScorer` with ``supports_cold = False`` and a ``history`` attribute.
    """
    p = resolve_params("mf_bpr", DEFAULTS, params)
    return _train_mf(data, p, seed, validate, progress)


def teacher_vectors(data: RecData, teacher: tuple[torch.Tensor, torch.Tensor] | None, params: dict[str, Any] | None,
                    seed: int, validate: Validator, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen preference vectors of the distillation/dropout baselines.

    ``teacher`` (user (U, d), item (N, d) embeddings of a trained warm model) when given;
    otherwise an MF-BPR trained here with ``params``. Item rows of items without training
    interactions are zero (a teacher knows nothing of them).
    """
    if teacher is None:
        sc = _train_mf(data, resolve_params("mf_bpr", DEFAULTS, params), seed, validate, progress)
        teacher = (sc.user_emb, sc.item_emb)
    users, items = teacher
    return users.detach().float(), items.detach().float() * train_item_mask(data).unsqueeze(1).float()
