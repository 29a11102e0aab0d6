"""Uncertainty: bootstrap confidence intervals over users and aggregation over seeds.

Bootstrap: the percentile bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap",
1993) over evaluated users. All metrics of one setting share the same resamples (paired), and
a resample is drawn as multinomial counts so that every metric's resampled mean is one
``counts @ values`` matmul. Across seeds: mean, sample std and a Student-t interval.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch


def bootstrap_means(values: torch.Tensor, samples: int = 1000, seed: int = 0) -> torch.Tensor:
    """Means of ``samples`` bootstrap resamples of the rows of ``values``.

    Args:
        values: per-user values, one column per metric.
        samples: number of resamples.
        seed: seed of the resampling (same seed, same resamples).

    Shapes:
        values: (n,) or (n, M) -> (samples,) or (samples, M)
    """
    vec = values.dim() == 1
    v = values.double().view(values.size(0), -1)  # (n, M)
    n = v.size(0)
    if n == 0:
        raise ValueError("bootstrap over zero users")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(n, (samples, n), generator=g)  # (S, n)
    counts = torch.zeros(samples, n, dtype=torch.float64)
    counts.scatter_add_(1, idx, torch.ones_like(counts))
    means = counts @ v / n  # (S, M)
    return means.view(-1) if vec else means


def bootstrap_ci(values: torch.Tensor, samples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean and percentile-bootstrap interval of a per-user metric.

    Returns:
        ``{"mean", "lo", "hi"}`` (``lo``/``hi`` equal the mean when ``samples == 0``).

    Shapes:
        values: (n,)
    """
    mean = float(values.double().mean())
    if samples == 0:
        return {"mean": mean, "lo": mean, "hi": mean}
    m = bootstrap_means(values, samples, seed)
    a = (1 - level) / 2
    lo, hi = torch.quantile(m, torch.tensor([a, 1 - a], dtype=torch.float64)).tolist()
    return {"mean": mean, "lo": lo, "hi": hi}


def bootstrap_result(per_user: Mapping[str, Mapping[str, torch.Tensor]], samples: int = 1000, level: float = 0.95,
                     seed: int = 0, metrics: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """CIs for every setting and metric of ``EvalResult.per_user``.

    Args:
        per_user: ``{setting: {"users": (n,), "recall@20": (n,), ...}}``.
        samples / level / seed: bootstrap settings (same resamples for all metrics of a setting).
        metrics: subset of metric names (default: all but ``users``).

    Returns:
        ``{setting: {metric: {"mean", "lo", "hi"}}}``.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    a = (1 - level) / 2
    for s, arrays in per_user.items():
        names = [m for m in arrays if m != "users"] if metrics is None else list(metrics)
        if not names:
            continue
        v = torch.stack([arrays[m].double() for m in names], 1)  # (n, M)
        mean = v.mean(0)
        if samples > 0:
            q = torch.quantile(bootstrap_means(v, samples, seed), torch.tensor([a, 1 - a], dtype=torch.float64), dim=0)
        else:
            q = torch.stack([mean, mean])
        out[s] = {m: {"mean": float(mean[j]), "lo": float(q[0, j]), "hi": float(q[1, j])} for j, m in enumerate(names)}
    return out


def paired_bootstrap_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], metric: str,
                          samples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """CI of mean(a) - mean(b) over the users both evaluated (one setting's per-user arrays).

    Returns:
        ``{"mean", "lo", "hi", "p_le_0"}``; ``p_le_0`` is the bootstrap share of differences <= 0.
    """
    ua, ub = a["users"].tolist(), b["users"].tolist()
    pos_b = {u: j for j, u in enumerate(ub)}
    common = [(i, pos_b[u]) for i, u in enumerate(ua) if u in pos_b]
    if not common:
        raise ValueError("paired_bootstrap_diff: no user evaluated by both")
    ia = torch.tensor([c[0] for c in common])
    ib = torch.tensor([c[1] for c in common])
    d = a[metric].double()[ia] - b[metric].double()[ib]  # (n,)
    ci = bootstrap_ci(d, samples, level, seed)
    ci["p_le_0"] = float((bootstrap_means(d, samples, seed) <= 0).double().mean()) if samples else float("nan")
    return ci


def aggregate_seeds(runs: Sequence[Mapping[str, Mapping[str, float]]], level: float = 0.95) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, std and Student-t CI of each metric across runs with different seeds.

    Args:
        runs: one ``{setting: {metric: value}}`` per seed (e.g. ``metrics.json[model]`` of each run).
            Only settings/metrics present in every run are aggregated.

    Returns:
        ``{setting: {metric: {"mean", "std", "lo", "hi", "n"}}}`` (std/lo/hi are NaN-free:
        with one run, std = 0 and lo = hi = mean).
    """
    if not runs:
        raise ValueError("aggregate_seeds: no runs")
    settings = set(runs[0]).intersection(*[set(r) for r in runs[1:]])
    out: dict[str, dict[str, dict[str, float]]] = {}
    n = len(runs)
    if n > 1:
        from scipy.stats import t as student_t

        tq = float(student_t.ppf(1 - (1 - level) / 2, df=n - 1))
    for s in sorted(settings, key=str):
        metrics = set(runs[0][s]).intersection(*[set(r[s]) for r in runs[1:]])
        out[s] = {}
        for m in sorted(metrics):
            xs = [float(r[s][m]) for r in runs]
            mean = sum(xs) / n
            std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
            half = tq * std / math.sqrt(n) if n > 1 else 0.0
            out[s][m] = {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "n": n}
    return out


def t_interval(xs: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t interval of independent values (e.g. one per benchmark run).

    Returns:
        ``{"mean", "ci95": [lo, hi], "std", "n"}`` (the interval collapses to the mean when n = 1).
    """
    xs = [float(x) for x in xs]
    n = len(xs)
    if n == 0:
        raise ValueError("t_interval: no values")
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "ci95": [mean, mean], "std": 0.0, "n": 1}
    from scipy.stats import t as student_t

    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(student_t.ppf(1 - (1 - level) / 2, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "ci95": [mean - half, mean + half], "std": std, "n": n}


def paired_ratio(model: Sequence[float], baseline: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Per-run ratios ``model / baseline`` (paired: same run, same items and users), their mean,
    a Student-t interval over runs and the number of runs the model won.

    Returns:
        ``{"ratio", "ci95": [lo, hi], "wins", "runs", "per_run", "resolved"}``; ``resolved`` is
        ``"better"`` / ``"worse"`` when the interval excludes 1, else ``"not resolved"``.
    """
    if len(model) != len(baseline) or not model:
        raise ValueError("paired_ratio: need the same (non-zero) number of runs for both")
    ratios = [float(a) / float(b) if b > 0 else float("nan") for a, b in zip(model, baseline)]
    finite = [r for r in ratios if math.isfinite(r)]
    if not finite:
        return {"ratio": float("nan"), "ci95": [float("nan")] * 2, "wins": 0, "runs": len(ratios),
                "per_run": ratios, "resolved": "not resolved"}
    ti = t_interval(finite, level)
    lo, hi = ti["ci95"]
    resolved = "better" if lo > 1 else "worse" if hi < 1 else "not resolved"
    if len(finite) == 1:
        resolved = "not resolved"
    return {"ratio": ti["mean"], "ci95": [lo, hi], "wins": sum(a > b for a, b in zip(model, baseline)),
            "runs": len(ratios), "per_run": ratios, "resolved": resolved}


def item_bootstrap(users: torch.Tensor, topk: torch.Tensor, positives: torch.Tensor, items: torch.Tensor, k: int = 20,
                   samples: int = 1000, seed: int = 0) -> torch.Tensor:
    """Recall@k and NDCG@k over bootstrap resamples of the *items* (the rankings held fixed).

    Uncertainty from which items happened to be drawn into the evaluated set: each resample
    draws ``len(items)`` items with replacement; an item drawn ``w`` times counts ``w`` times as
    a positive and as a hit (with its fixed rank), and users left without a drawn positive drop
    out of that resample. Use the same ``seed`` for two models to pair their resamples.

    Args:
        users: (n,) user index of each top-k row; topk: (n, >=k) ranked item indices (-1 pad).
        positives: (2, P) ``[user, item]`` positives of the setting; items: (I,) the setting's items.

    Returns:
        (samples, 2) tensor: recall@k and NDCG@k of each resample.
    """
    I = items.numel()
    col = torch.full((int(max(items.max(), topk.max(), positives[1].max())) + 1,), -1, dtype=torch.long)
    col[items] = torch.arange(I)
    row = torch.full((int(max(users.max(), positives[0].max())) + 1,), -1, dtype=torch.long)
    row[users] = torch.arange(users.numel())
    n = users.numel()
    pos = torch.zeros(n, I, dtype=torch.float64)
    r, c = row[positives[0]], col[positives[1]]
    keep = (r >= 0) & (c >= 0)
    pos[r[keep], c[keep]] = 1.0
    top = topk[:, :k]
    gain = torch.zeros(n, I, dtype=torch.float64)
    valid = top >= 0
    tc = col[top.clamp_min(0)]
    ranks = torch.arange(1, k + 1, dtype=torch.float64).expand(n, k)
    rr = torch.arange(n).unsqueeze(1).expand(n, k)
    m = valid & (tc >= 0)
    gain[rr[m], tc[m]] = 1.0 / torch.log2(ranks[m] + 1.0)
    hit = (gain > 0).double() * pos
    gain = gain * pos
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(samples, I, dtype=torch.float64)
    w.scatter_add_(1, torch.randint(I, (samples, I), generator=g), torch.ones(samples, I, dtype=torch.float64))
    n_pos = pos @ w.T  # (n, S)
    ok = n_pos > 0
    recall = torch.where(ok, (hit @ w.T) / n_pos.clamp_min(1e-12), torch.zeros_like(n_pos))
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    idcg_table = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(disc, 0)])
    idcg = idcg_table[n_pos.clamp(max=k).round().long()]
    ndcg = torch.where(ok, (gain @ w.T) / idcg.clamp_min(1e-12), torch.zeros_like(n_pos))
    cnt = ok.double().sum(0).clamp_min(1)
    return torch.stack([recall.sum(0) / cnt, ndcg.sum(0) / cnt], 1)
