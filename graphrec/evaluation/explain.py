"""Words for report rows that are degenerate by construction, so a reader does not take them for bugs.

Two cases seen in real runs:

* **cold items always below warm ones**: a model whose ``cold_full`` metrics (cold-test
  positives ranked among *every* catalogue item) are exactly 0 although it ranks cold items
  among themselves (its ``cold`` row is not 0). Popularity gives a cold item no train
  interactions, so a score below every warm item; distillation baselines (Heater, ALDI) score cold
  items with a student tower whose scores sit below the teacher's warm scores. Not one cold item
  reaches a top-K where warm items compete. :func:`ranks_cold_below_warm` checks it on scores.
* **identical to its teacher on warm items**: a model whose ``warm`` metrics equal another
  model's in every metric. ALDI serves warm items with its MF-BPR teacher's embeddings and only
  cold items with the distilled student, so its warm ranking *is* the teacher's.

>>> notes = degenerate_row_notes(results, teachers={"aldi": "mf_bpr"})
>>> notes["aldi"]   # "warm: identical to mf_bpr in every metric ..."
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

Results = Mapping[str, Mapping[str, Mapping[str, float]]]
#: Keys of a setting's metrics that are counts, not quality metrics.
COUNT_KEYS = ("n_users", "n_positives", "n_items", "n_candidates")


def _quality(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k not in COUNT_KEYS and not k.startswith("n_")}


def _all_zero(metrics: Mapping[str, float]) -> bool:
    q = _quality(metrics)
    return bool(q) and all(v == 0.0 for v in q.values() if not math.isnan(v))


def _positive(metrics: Mapping[str, float]) -> bool:
    return any(v > 0 for v in _quality(metrics).values() if not math.isnan(v))


def _identical(a: Mapping[str, float], b: Mapping[str, float], tol: float) -> bool:
    qa, qb = _quality(a), _quality(b)
    if not qa or qa.keys() != qb.keys():
        return False
    return all((math.isnan(x) and math.isnan(qb[k])) or abs(x - qb[k]) <= tol for k, x in qa.items())


def degenerate_row_notes(results: Results, teachers: Mapping[str, str] | None = None,
                         cold_below_warm: Mapping[str, bool] | None = None, tol: float = 1e-12) -> dict[str, str]:
    """One explanation per model whose report rows are degenerate by construction.

    Args:
        results: ``{model: {setting: {metric: value}}}`` as in ``metrics.json``.
        teachers: ``{model: teacher}`` where known (e.g. ``{"aldi": "mf_bpr"}``); a model whose
            warm row equals its teacher's is explained as serving warm items with the teacher.
            Without it, any other model with an identical warm row is named.
        cold_below_warm: ``{model: True}`` where :func:`ranks_cold_below_warm` confirmed it on
            the scores; then the ``cold_full`` note says so as a fact rather than as the reading
            of a 0 row.
        tol: absolute tolerance of "identical" (metrics are means over the same users).

    Returns:
        ``{model: note}`` (``"; "``-joined when a model has both); models without a note are absent.
    """
    teachers = dict(teachers or {})
    confirmed = dict(cold_below_warm or {})
    notes: dict[str, list[str]] = {}
    for m, per in results.items():
        full, cold = per.get("cold_full"), per.get("cold")
        if full and _all_zero(full) and (full.get("n_users", 1) or 0) > 0:
            if confirmed.get(m):
                why = "every cold item scores below every warm item for every user"
            elif cold and _positive(cold):
                why = ("it ranks cold items among themselves (its cold row is not 0) but not one reaches a top-K "
                       "where warm items compete: its cold items score below the warm ones")
            else:
                why = "not one cold-test positive reaches a top-K over the whole catalogue"
            notes.setdefault(m, []).append(f"cold_full is 0 by construction: {why} (e.g. no train popularity, or a "
                                           "cold tower on a lower scale than the warm one); see its cold row for how "
                                           "it orders cold items")
    names = list(results)
    for m in names:
        warm = results[m].get("warm")
        if not warm:
            continue
        t = teachers.get(m)
        if t is not None and t in results and results[t].get("warm") and _identical(warm, results[t]["warm"], tol):
            notes.setdefault(m, []).append(f"warm is identical to its teacher {t} in every metric: it serves warm items "
                                           f"with {t}'s embeddings and only cold items with its own student")
            continue
        if t is not None:
            continue
        # no known teacher: name the first earlier row with the same warm metrics (a pair is noted once)
        twins = [o for o in names[:names.index(m)] if teachers.get(o) != m and results[o].get("warm")
                 and _identical(warm, results[o]["warm"], tol)]
        if twins:
            notes.setdefault(m, []).append(f"warm is identical to {twins[0]} in every metric: both give warm items "
                                           "the same scores (e.g. a shared teacher's embeddings)")
    return {m: "; ".join(v) for m, v in notes.items()}


def ranks_cold_below_warm(scores: torch.Tensor, warm: torch.Tensor, cold: torch.Tensor) -> bool:
    """True when, for every user row, the best cold item scores below the worst warm item.

    Args:
        scores: (B, N) scores of a sample of users over the catalogue.
        warm: (N,) bool, the warm items; cold: (N,) bool, the cold items compared.

    Shapes:
        scores: (B, N); warm, cold: (N,)
    """
    if not bool(warm.any()) or not bool(cold.any()):
        return False
    s = scores.float()
    return bool((s[:, cold].max(1).values < s[:, warm].min(1).values).all())
