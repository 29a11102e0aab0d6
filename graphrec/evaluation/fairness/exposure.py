"""Item side of the fairness audit: exposure of item groups in top-K lists vs their relevance.

Exposure share of a group = its share of the (non-padding) top-K slots, next to its positive share
(share of the setting's positives) and candidate share; the exposure Gini over a setting's
candidates. Groupings: train-popularity buckets + cold, warm/cold, genres (package docstring of
:mod:`graphrec.evaluation.fairness`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation.beyond import popularity_buckets

OTHER_ITEMS = "other (no bucket)"
NO_GENRE = "(no genre)"


def exposure_counts(topk: torch.Tensor, num_items: int, k: int = 20) -> torch.Tensor:
    """Top-``k`` slots per item (``-1`` padding ignored).

    Shapes:
        topk: (n, >=k) item indices -> (num_items,) long
    """
    items = topk[:, :k].reshape(-1)
    return torch.bincount(items[items >= 0], minlength=num_items)


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative values (0 = equal; ``(n-1)/n`` = all on one entry).

    ``G = sum_i (2i - n - 1) x_(i) / (n sum x)`` over the values sorted ascending, i = 1..n.
    NaN for an empty input or an all-zero one.

    Shapes:
        values: (n,)
    """
    x = torch.sort(values.double().reshape(-1)).values
    n, total = x.numel(), float(x.sum()) if x.numel() else 0.0
    if n == 0 or total == 0:
        return float("nan")
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def item_groupings(data: RecData, phase: str = "test", n_buckets: int = 3) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """Item groupings as membership weights: ``{name: (weights (N, G) float, labels)}``.

    ``popularity``: warm train-popularity quantile buckets, ``cold`` (the phase's cold items)
    and ``other (no bucket)`` (items with no interactions, the other phase's cold items);
    ``cold_warm``: ``warm``, ``cold``, ``other``; ``genre`` (when ``data.items`` has genres):
    each item's weight split equally over its ``|``-separated genres, ``(no genre)`` if none.
    Every row sums to 1.
    """
    n = data.num_items
    out: dict[str, tuple[torch.Tensor, list[str]]] = {}
    bucket, labels = popularity_buckets(data, n_buckets, phase)
    b = torch.where(bucket >= 0, bucket, torch.full_like(bucket, len(labels)))
    out["popularity"] = (torch.nn.functional.one_hot(b, len(labels) + 1).float(), labels + [OTHER_ITEMS])
    cw = torch.full((n,), 2, dtype=torch.long)
    cw[torch.unique(data.warm_items.long())] = 0
    cw[torch.unique((data.cold_test_items if phase == "test" else data.cold_val_items).long())] = 1
    out["cold_warm"] = (torch.nn.functional.one_hot(cw, 3).float(), ["warm", "cold", "other"])
    if data.items is not None and "genres" in data.items.columns:
        per_item = [[g.strip() for g in str(s).split("|") if g.strip() and str(s).lower() != "nan"]
                    for s in data.items["genres"].fillna("").tolist()]
        if any(per_item):
            names = sorted({g for gs in per_item for g in gs}) + [NO_GENRE]
            col = {g: j for j, g in enumerate(names)}
            w = torch.zeros(n, len(names))
            for i, gs in enumerate(per_item):
                gs = gs or [NO_GENRE]
                for g in gs:
                    w[i, col[g]] += 1.0 / len(gs)
            out["genre"] = (w, names)
    return out


def group_exposure(slots: torch.Tensor, positives: torch.Tensor, candidates: torch.Tensor,
                   weights: torch.Tensor, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Exposure share vs positive share (and candidate share) of each item group.

    Args:
        slots: top-K slots per item (:func:`exposure_counts`).
        positives: positives per item in the setting.
        candidates: the setting's candidate items.
        weights / labels: one grouping of :func:`item_groupings`.

    Returns:
        ``{label: {"n_items", "candidate_share", "exposure_share", "positive_share",
        "exposure_to_positive"}}`` for groups with candidates; ``n_items`` counts candidates
        with any weight in the group; shares over groups sum to 1.

    Shapes:
        slots, positives: (N,); candidates: (C,); weights: (N, G)
    """
    w = weights[candidates]  # (C, G)
    s = slots[candidates].double() @ w.double()  # (G,)
    p = positives[candidates].double() @ w.double()
    c = w.double().sum(0)
    ts, tp, tc = float(s.sum()), float(p.sum()), float(c.sum())
    out = {}
    for j, label in enumerate(labels):
        if float(c[j]) == 0:
            continue
        es = float(s[j]) / ts if ts else float("nan")
        ps = float(p[j]) / tp if tp else float("nan")
        out[label] = {"n_items": int((w[:, j] > 0).sum()), "candidate_share": float(c[j]) / tc,
                      "exposure_share": es, "positive_share": ps,
                      "exposure_to_positive": es / ps if ps and math.isfinite(es) and math.isfinite(ps) else float("nan")}
    return out


def setting_exposure(topk: torch.Tensor, spec, data: RecData, groupings: Mapping[str, tuple[torch.Tensor, list[str]]],
                     k: int = 20) -> dict[str, Any]:
    """Gini, cold share and per-group exposure of one setting's top-K lists.

    Args:
        topk: ranked item indices of the setting (``EvalResult.topk[setting][1]``).
        spec: the setting's :class:`~graphrec.evaluation.protocol.SettingSpec` (candidates, positives).
        groupings: :func:`item_groupings`.

    Returns:
        ``{"gini@k", "n_candidates", "n_slots", "cold_slot_share@k", "cold_positive_share",
        "groups": {grouping: {label: {...}}}}`` (the cold shares are those of the ``cold_warm``
        grouping).
    """
    n = data.num_items
    slots = exposure_counts(topk, n, k)
    pos = torch.bincount(spec.positives[1], minlength=n)
    groups = {name: group_exposure(slots, pos, spec.candidates, w, labels) for name, (w, labels) in groupings.items()}
    cold = groups.get("cold_warm", {}).get("cold", {})
    return {f"gini@{k}": gini(slots[spec.candidates]), "n_candidates": int(spec.candidates.numel()),
            "n_slots": int(slots.sum()), f"cold_slot_share@{k}": cold.get("exposure_share", 0.0),
            "cold_positive_share": cold.get("positive_share", 0.0), "groups": groups}
