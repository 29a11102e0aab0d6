"""Popularity inherited by cold items: cold items' signals vs their content neighbours' train popularity.

Spearman correlation, over a phase's cold items, between a model's signal per cold item (mean
standardised score, or top-K slots) and the mean train popularity of its ``k`` most
content-similar warm items (package docstring of :mod:`graphrec.evaluation.fairness`).
"""

from __future__ import annotations

import math

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation.beyond import item_popularity


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either side is constant.

    Shapes:
        a, b: (n,)
    """
    if a.numel() != b.numel():
        raise ValueError(f"spearman: {a.numel()} vs {b.numel()} values")
    if a.numel() < 2:
        return float("nan")
    ra, rb = _avg_ranks(a.double()), _avg_ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


def _avg_ranks(x: torch.Tensor) -> torch.Tensor:
    _, inv, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # rank of the last member of each tie block (1-based)
    return (ends - (counts.double() - 1) / 2)[inv]


def centred_content(data: RecData) -> torch.Tensor:
    """Item content vectors: per modality centred on train items, L2-normalised, equal weights.

    The same recipe as :func:`graphrec.baselines.common.content_features` (kept here so the
    evaluation layer does not import the baselines). Items without a modality get zeros.

    Shapes:
        returns (N, sum D)
    """
    if not data.features:
        raise ValueError("no item features loaded")
    train = torch.zeros(data.num_items, dtype=torch.bool)
    train[data.train[1]] = True
    names = sorted(data.features)
    blocks = []
    for n in names:
        f = data.features[n]
        fit = train & f.mask
        x = f.x.float() - (f.x[fit].float().mean(0, keepdim=True) if fit.any() else 0.0)
        x = torch.nn.functional.normalize(x, dim=1) * f.mask.unsqueeze(1).float()
        blocks.append(x / math.sqrt(len(names)))
    return torch.cat(blocks, 1)


def neighbour_popularity(data: RecData, items: torch.Tensor, k: int = 10,
                         content: torch.Tensor | None = None) -> torch.Tensor:
    """Mean train popularity of each item's ``k`` most content-similar warm items (train pop > 0).

    Shapes:
        items: (M,) -> (M,) float64
    """
    pop = item_popularity(data)
    pool = (pop > 0).nonzero().view(-1)  # (P,) warm items with train users
    if pool.numel() == 0 or items.numel() == 0:
        return torch.zeros(items.numel(), dtype=torch.float64)
    x = centred_content(data) if content is None else content
    sim = x[items] @ x[pool].T  # (M, P)
    sim[items.unsqueeze(1) == pool.unsqueeze(0)] = float("-inf")  # never its own neighbour
    top = sim.topk(min(k, pool.numel()), dim=1).indices  # (M, k)
    return pop[pool][top].double().mean(1)


def mean_item_scores(scorer, users: torch.Tensor, items: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Mean over ``users`` of each user's scores of ``items`` standardised over those items.

    Per-user standardisation keeps users with large score scales from dominating the mean.

    Shapes:
        users: (n,); items: (M,) -> (M,) float64
    """
    total = torch.zeros(items.numel(), dtype=torch.float64)
    was_training = isinstance(scorer, torch.nn.Module) and scorer.training
    if isinstance(scorer, torch.nn.Module):
        scorer.eval()
    try:
        with torch.no_grad():
            for batch in torch.split(users, batch_size):
                s = scorer.score(batch)[:, items].double().cpu()  # (B, M), from the scorer's device
                sd = s.std(1, keepdim=True)
                total += ((s - s.mean(1, keepdim=True)) / torch.where(sd > 0, sd, torch.ones_like(sd))).sum(0)
    finally:
        if was_training:
            scorer.train()
    return total / max(users.numel(), 1)


def cold_inheritance(data: RecData, signal: torch.Tensor, items: torch.Tensor, k: int = 10,
                     neighbour_pop: torch.Tensor | None = None) -> float:
    """Spearman correlation between ``signal`` of cold ``items`` and their neighbours' popularity.

    Shapes:
        signal: (M,) one value per entry of ``items`` (M,)
    """
    npop = neighbour_popularity(data, items, k) if neighbour_pop is None else neighbour_pop
    return spearman(signal.double(), npop)
