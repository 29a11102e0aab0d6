"""Accuracy vs exposure of the exposure-penalty re-ranking (:mod:`graphrec.rerank`) over lambdas.

:func:`rerank_curve` evaluates one scorer re-ranked at each lambda through the full-ranking
protocol; :func:`choose_lambdas` marks the points chosen on a validation curve.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation.beyond import item_popularity
from graphrec.evaluation.fairness.exposure import item_groupings, setting_exposure


def rerank_curve(scorer, data: RecData, lams: Sequence[float], phase: str = "test", k: int = 20,
                 batch_size: int = 1024, popularity: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Accuracy vs exposure of the exposure-penalty re-ranking over ``lams`` (hybrid setting).

    Runs the full-ranking protocol on :class:`graphrec.rerank.RerankedScorer` for each
    lambda; choose lambda on ``phase="val"`` (:func:`choose_lambdas`), report ``phase="test"``.

    Args:
        popularity: per-item popularity of the penalty (default: train popularity).

    Returns:
        one ``{"lam", "recall@k", "ndcg@k", "gini@k", "cold_slot_share@k", "cold_positive_share",
        "n_users"}`` per lambda; empty when the scorer cannot rank the hybrid setting.
    """
    from graphrec.evaluation.index import setting_specs
    from graphrec.evaluation.protocol import evaluate
    from graphrec.rerank import RerankedScorer

    pop = item_popularity(data) if popularity is None else popularity
    spec = setting_specs(data, phase, ("hybrid",))["hybrid"]
    groupings = {"cold_warm": item_groupings(data, phase)["cold_warm"]}
    out = []
    for lam in lams:
        res = evaluate(RerankedScorer(scorer, pop, float(lam)), data, phase, ("hybrid",), (k,), batch_size)
        if "hybrid" not in res:
            return []
        ex = setting_exposure(res.topk["hybrid"][1], spec, data, groupings, k)
        out.append({"lam": float(lam), f"recall@{k}": res["hybrid"][f"recall@{k}"], f"ndcg@{k}": res["hybrid"][f"ndcg@{k}"],
                    f"gini@{k}": ex[f"gini@{k}"], f"cold_slot_share@{k}": ex[f"cold_slot_share@{k}"],
                    "cold_positive_share": ex["cold_positive_share"], "n_users": res["hybrid"]["n_users"]})
    return out


CHOICES = ("accuracy", "gini", "calibrated")


def choose_lambdas(val_curve: Sequence[Mapping[str, float]], tolerance: float = 0.05, k: int = 20) -> dict[str, float]:
    """The marked points of a validation curve (:data:`CHOICES`).

    * ``"accuracy"``: the lambda with the best validation Recall@k;
    * among the lambdas whose validation Recall@k is within ``tolerance`` (relative) of that best:
      ``"gini"``, the one with the lowest validation exposure Gini (the most even exposure), and
      ``"calibrated"``, the one whose cold share of slots is closest to the cold share of the
      positives (exposure proportional to relevance; Steck, "Calibrated Recommendations", RecSys 2018).

    Ties go to the smaller lambda.
    """
    if not val_curve:
        raise ValueError("choose_lambdas: empty curve")
    rk, gk, ck = f"recall@{k}", f"gini@{k}", f"cold_slot_share@{k}"
    pts = sorted(val_curve, key=lambda p: p["lam"])
    best = max(pts, key=lambda p: p[rk])  # max keeps the first (smallest lambda) of equal values
    ok = [p for p in pts if p[rk] >= (1 - tolerance) * best[rk]]
    fin = lambda x: x if x is not None and math.isfinite(x) else math.inf  # noqa: E731
    gini_pt = min(ok, key=lambda p: (fin(p.get(gk)), p["lam"]))
    cal_pt = min(ok, key=lambda p: (fin(abs(p.get(ck, math.nan) - p.get("cold_positive_share", math.nan))), p["lam"]))
    return {"accuracy": best["lam"], "gini": gini_pt["lam"], "calibrated": cal_pt["lam"]}
