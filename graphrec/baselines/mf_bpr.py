"""Matrix factorisation trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking
from Implicit Feedback", UAI 2009). Warm only: an item without training interactions has no
learned vector, so ``supports_cold = False`` and such items score below every warm item.

The fitted model also serves as the frozen "teacher" / pretrained preference vectors of
DropoutNet, Heater and ALDI (:func:`pretrained_mf`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.baselines.common import (BPRSampler, EmbeddingScorer, bpr_loss,
                                       fit_with_early_stopping, generator, resolve_params,
                                       train_item_mask)
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {
    "dim": 64,
    "lr": 5e-3,
    "reg": 1e-4,  # L2 weight on the batch's embeddings (per example)
    "batch_size": 4096,
    "epochs": 40,
    "eval_every": 2,
    "patience": 3,
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


def _train_mf(data: RecData, p: dict[str, Any], seed: int, progress: bool) -> tuple[EmbeddingScorer, dict]:
    gen = generator(seed)
    model = MF(data.num_users, data.num_items, p["dim"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    sampler = BPRSampler(data, gen)
    valid = train_item_mask(data)

    def epoch(_: int) -> float:
        total, n = 0.0, 0
        for u, i, j in sampler.epoch(p["batch_size"]):
            eu, ei, ej = model.user(u), model.item(i), model.item(j)
            loss = bpr_loss((eu * ei).sum(1), (eu * ej).sum(1))
            loss = loss + p["reg"] * (eu.pow(2) + ei.pow(2) + ej.pow(2)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item(), n + 1
        return total / max(n, 1)

    def snapshot() -> EmbeddingScorer:
        return EmbeddingScorer(model.user.weight, model.item.weight, valid_items=valid, supports_cold=False)

    return fit_with_early_stopping(epoch, snapshot, data, "warm", p["epochs"], p["eval_every"],
                                   p["patience"], progress, desc="mf_bpr")


def fit_mf_bpr(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
               progress: bool = True) -> EmbeddingScorer:
    """Fit MF-BPR on ``data.train``; early stopping on warm-validation NDCG@20.

    Returns:
        an :class:`EmbeddingScorer` with ``supports_cold = False`` and a ``history`` attribute.
    """
    p = resolve_params("mf_bpr", DEFAULTS, params)
    scorer, hist = _train_mf(data, p, seed, progress)
    scorer.history = hist
    _remember_teacher(data, p, seed, scorer)
    return scorer


_TEACHERS: dict = {}


def pretrained_mf(data: RecData, params: dict[str, Any] | None, seed: int,
                  progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen MF-BPR user and item vectors for the distillation/dropout baselines.

    Trained once per (data object, params, seed) in this process and reused across trials.

    Shapes:
        returns user (U, d), item (N, d); rows of items without training interactions are zero.
    """
    p = resolve_params("mf_bpr", DEFAULTS, params)
    key = _teacher_key(data, p, seed)
    got = _TEACHERS.get(key)
    if got is None or got[0] is not data:  # not trained yet, or id() reused by a new object
        _remember_teacher(data, p, seed, _train_mf(data, p, seed, progress)[0])
        got = _TEACHERS[key]
    return got[1], got[2]


def _teacher_key(data: RecData, p: dict[str, Any], seed: int) -> tuple:
    return (id(data), tuple(sorted(p.items())), seed)


def _remember_teacher(data: RecData, p: dict[str, Any], seed: int, sc: EmbeddingScorer) -> None:
    """Keep the vectors of a fitted MF (at most 4) so the teacher-based baselines reuse them."""
    item = sc.item_emb * train_item_mask(data).unsqueeze(1).float()
    if len(_TEACHERS) >= 4:
        _TEACHERS.pop(next(iter(_TEACHERS)))
    _TEACHERS[_teacher_key(data, p, seed)] = (data, sc.user_emb, item)
