"""ALDI (Huang, Wang, Zhang, Zhang, Zhang, Zheng, "Aligning Distillation For Cold-start Item
Recommendation", SIGIR 2023).

Teacher: a frozen warm recommender (MF-BPR ``e_u``, ``e_i``). Student: an item tower
``g(x_i)`` from content and a user tower ``h(e_u)``, trained on (u, i+, i-) triples with

* the student's own BPR loss;
* rating distribution aligning, ``gamma * mean(|s_ui - t_ui| + |s_uj - t_uj|)``;
* ranking aligning, ``alpha * w_i * BCE(sigmoid(s_ui - s_uj), sigmoid(t_ui - t_uj))``;
* identification aligning, ``beta * w_i * BCE`` between the student's and the teacher's
  "self vs. others" item logits ``e_i.e_i - mean_j e_i.e_j``;

where ``w_i = min(tanh(a * f_i), tanh(M))`` down-weights items whose teacher vectors are
unreliable: ``f_i = sum_{u in N(i)} 1/|N(u)|`` (training edges), ``a = M / E[f]``. At
inference warm items are scored by the teacher and cold items by the student (the two spaces
are kept apart, as in the paper). Checked against the authors' training recipe as ported in
public code (towers ``Linear -> BatchNorm -> tanh -> Linear``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from graphrec.baselines.common import (TRAINING_DEFAULTS, BatchLoss, BPRSampler, SplitScorer, Validator, content_features, fit_scorer,
                                       generator, per_unique, resolve_params, train_item_mask)
from graphrec.baselines.mf_bpr import teacher_vectors
from graphrec.losses import bpr_loss
from graphrec.baselines.towers import Tower, apply_in_batches
from graphrec.data.dataset import RecData

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "hidden": 256,
    "alpha": 0.9,  # ranking aligning weight
    "beta": 0.1,  # identification aligning weight
    "gamma": 0.1,  # rating distribution aligning weight
    "freq_coef": 4.0,  # M of the item weight
    "teacher": {},
}


def item_weights(data: RecData, coef: float) -> torch.Tensor:
    """ALDI's teacher-reliability weight per item. Shapes: (N,)"""
    u, i = data.train
    deg_u = torch.bincount(u, minlength=data.num_users).float().clamp(min=1)
    f = torch.zeros(data.num_items).index_add_(0, i, 1.0 / deg_u[u])  # (N,)
    warm = train_item_mask(data)
    a = coef / f[warm].mean().clamp(min=1e-12)
    return torch.tanh(a * f).clamp(max=math.tanh(coef))


def fit_aldi(data: RecData, params: dict[str, Any] | None = None, seed: int = 0,
             validate: Validator | None = None, progress: bool = True, teacher=None) -> SplitScorer:
    """Fit ALDI on ``data.train``; early stopping on cold-validation NDCG@20.

    ``teacher``: frozen (user, item) teacher vectors (default: an MF-BPR with ``params["teacher"]``).
    """
    p = resolve_params("aldi", DEFAULTS, params)
    T_u, T_i = teacher_vectors(data, teacher, p["teacher"], seed, validate, progress)  # (U, d), (N, d)
    gen = generator(seed)
    X = content_features(data)
    warm = train_item_mask(data)
    w = item_weights(data, p["freq_coef"])
    d = T_u.shape[1]
    user_tower, item_tower = Tower(d, p["hidden"], d), Tower(X.shape[1], p["hidden"], d)
    opt = torch.optim.Adam(list(user_tower.parameters()) + list(item_tower.parameters()),
                           lr=p["lr"], weight_decay=p["weight_decay"])
    sampler = BPRSampler(data, gen)

    def loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        tu, ti, tj = T_u[u], T_i[i], T_i[j]
        sij = per_unique(lambda k: item_tower(X[k]), torch.cat([i, j]))  # (2B, d)
        su, si, sj = user_tower(tu), sij[:len(i)], sij[len(i):]
        t_pos, t_neg = (tu * ti).sum(1), (tu * tj).sum(1)
        s_pos, s_neg = (su * si).sum(1), (su * sj).sum(1)
        rating = (s_pos - t_pos).abs().mean() + (s_neg - t_neg).abs().mean()
        rank = F.binary_cross_entropy_with_logits(s_pos - s_neg, torch.sigmoid(t_pos - t_neg), reduction="none")
        s_id = (si * si).sum(1) - (si @ sj.T).mean(1)
        t_id = (ti * ti).sum(1) - (ti @ tj.T).mean(1)
        ident = F.binary_cross_entropy_with_logits(s_id, torch.sigmoid(t_id), reduction="none")
        wi = w[i]
        return (bpr_loss(s_pos, s_neg) + p["gamma"] * rating + p["alpha"] * (wi * rank).mean()
                + p["beta"] * (wi * ident).mean())

    def snapshot() -> SplitScorer:
        return SplitScorer(T_u, T_i, apply_in_batches(user_tower, T_u), apply_in_batches(item_tower, X), warm)

    return fit_scorer(BatchLoss(loss, user_tower, item_tower), lambda _: sampler.epoch(p["batch_size"]), opt, snapshot,
                      validate, "cold", p, progress, desc="aldi")
