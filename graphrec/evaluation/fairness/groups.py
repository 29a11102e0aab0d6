"""User side of the fairness audit: user groupings and per-group quality with bootstrap intervals.

Groupings: train-activity quantiles for every data set and each attribute column of the users
file; per-group Recall/NDCG means with percentile-bootstrap intervals, small groups pooled, and
the best-worst gap (package docstring of :mod:`graphrec.evaluation.fairness`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation import stats

USER_METRICS = ("recall", "ndcg")


def _natural_key(label: str):
    m = re.search(r"\d+", label)
    return (0 if m else 1, int(m.group()) if m else 0, not label.startswith("<"), label)


def activity_groups(data: RecData, n_buckets: int = 4) -> tuple[torch.Tensor, list[str]]:
    """User groups by train history length (distinct train items), equal-count quantile buckets.

    Returns:
        ``(group (num_users,) long, labels)``, labels like ``"Q1 (1-12 train items)"``.
    """
    e = data.train.long()
    key = torch.unique(e[0] * data.num_items + e[1])
    length = torch.bincount(key // data.num_items, minlength=data.num_users).double()  # (U,)
    edges = torch.quantile(length, torch.linspace(0, 1, n_buckets + 1, dtype=torch.float64))
    b = torch.bucketize(length, edges[1:-1], right=True).clamp(max=n_buckets - 1)
    used = sorted(set(b.tolist()))
    remap = torch.full((n_buckets,), -1, dtype=torch.long)
    remap[torch.tensor(used)] = torch.arange(len(used))
    g = remap[b]
    labels = []
    for j in range(len(used)):
        sel = length[g == j]
        lo, hi = int(sel.min()), int(sel.max())
        labels.append(f"Q{j + 1} ({lo}-{hi} train items)" if lo < hi else f"Q{j + 1} ({lo} train items)")
    return g, labels


def attribute_groups(data: RecData, user_attrs, column: str) -> tuple[torch.Tensor, list[str]]:
    """User groups by one attribute column (``-1``: user not in the table or value empty).

    Returns:
        ``(group (num_users,) long, labels)``, labels in natural order (numbers numerically, so
        ``"<18", "18-24", ..., "56+"``).
    """
    values = dict(zip(user_attrs["user_id"].astype(str), user_attrs[column].fillna("").astype(str).str.strip()))
    per_user = [values.get(u, "") for u in data.user_ids]
    labels = sorted({v for v in per_user if v}, key=_natural_key)
    idx = {v: j for j, v in enumerate(labels)}
    return torch.tensor([idx.get(v, -1) for v in per_user], dtype=torch.long), labels


def user_groupings(data: RecData, user_attrs=None, activity_buckets: int = 4) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """``{"activity": ..., <attribute>: ...}``: every grouping of users the audit reports."""
    out = {"activity": activity_groups(data, activity_buckets)}
    if user_attrs is not None:
        for col in [c for c in user_attrs.columns if c != "user_id"]:
            out[str(col)] = attribute_groups(data, user_attrs, col)
    return out


def group_quality(per_user: Mapping[str, torch.Tensor], group: torch.Tensor, labels: Sequence[str],
                  metrics: Sequence[str] = ("recall@20", "ndcg@20"), samples: int = 1000, level: float = 0.95,
                  seed: int = 0, min_group_users: int = 20) -> dict[str, Any]:
    """Per-group means with bootstrap intervals, and the best-worst gap, of per-user metrics.

    Args:
        per_user: one setting of ``EvalResult.per_user`` (``{"users": (n,), metric: (n,)}``).
        group / labels: a user grouping (``group[u] = -1``: no group).
        metrics: metric names in ``per_user``.
        samples / level / seed: bootstrap settings (0 samples: intervals collapse to the mean).
        min_group_users: smaller groups are pooled into ``other (< m users each)``.

    Returns:
        ``{"groups": {label: {"n_users", metric: {"mean", "lo", "hi"}}}, "n_users_no_group",
        "n_users_dropped", "gap": {metric: {"best", "worst", "gap", "lo", "hi"}}}``; the gap is
        omitted with fewer than two (unpooled) groups.
    """
    g = group[per_user["users"]]  # (n,)
    vals = {m: per_user[m].double() for m in metrics}
    members = {label: (g == j).nonzero().view(-1) for j, label in enumerate(labels)}
    members = {lb: ix for lb, ix in members.items() if ix.numel()}
    small = [lb for lb, ix in members.items() if ix.numel() < min_group_users]
    keep = {lb: ix for lb, ix in members.items() if lb not in small}
    pooled = None
    dropped = 0
    if small:
        ix = torch.cat([members[lb] for lb in small])
        if ix.numel() >= min_group_users:
            pooled = f"other (< {min_group_users} users each: {len(small)} groups)"
            keep[pooled] = ix
        else:
            dropped = int(ix.numel())
    out: dict[str, Any] = {"groups": {}, "n_users_no_group": int((g < 0).sum()), "n_users_dropped": dropped}
    v = torch.stack([vals[m] for m in metrics], 1)  # (n, M)
    a = (1 - level) / 2
    q = torch.tensor([a, 1 - a], dtype=torch.float64)
    boot: dict[str, torch.Tensor] = {}
    for j, (lb, ix) in enumerate(keep.items()):
        mean = v[ix].mean(0)  # (M,)
        if samples > 0:
            boot[lb] = stats.bootstrap_means(v[ix], samples, seed + j)  # (S, M), one resample set per group
            lohi = torch.quantile(boot[lb], q, dim=0)  # (2, M)
        else:
            lohi = torch.stack([mean, mean])
        out["groups"][lb] = {"n_users": int(ix.numel()), **{
            m: {"mean": float(mean[c]), "lo": float(lohi[0, c]), "hi": float(lohi[1, c])} for c, m in enumerate(metrics)}}
    ranked = [lb for lb in keep if lb != pooled]
    if len(ranked) >= 2:
        out["gap"] = {}
        for c, m in enumerate(metrics):
            best = max(ranked, key=lambda lb: out["groups"][lb][m]["mean"])
            worst = min(ranked, key=lambda lb: out["groups"][lb][m]["mean"])
            gap = out["groups"][best][m]["mean"] - out["groups"][worst][m]["mean"]
            lo = hi = gap
            if samples > 0:  # the two groups' resamples are independent (different seeds)
                lo, hi = torch.quantile(boot[best][:, c] - boot[worst][:, c], q).tolist()
            out["gap"][m] = {"best": best, "worst": worst, "gap": gap, "lo": lo, "hi": hi}
    return out
