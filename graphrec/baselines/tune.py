"""Validation-only tuning of the baselines with a small recorded budget.

:func:`tune` tries at most ``budget`` configurations of a grid (a seeded subset when the grid
is larger), fits each with the same seed, scores it with
``graphrec.evaluation.protocol.validation_score`` (cold-validation NDCG@20 for cold-capable
baselines, warm-validation NDCG@20 for MF-BPR/LightGCN) and keeps the best. Test data is
never read here.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import torch

from graphrec.baselines import get_baseline
from graphrec.baselines.common import METRIC, num_threads, validation_score
from graphrec.data.dataset import RecData


def expand_grid(grid: dict[str, list[Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """Cartesian product of ``grid`` (keys sorted); a seeded subset of ``budget`` if larger."""
    keys = sorted(grid)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
    if len(combos) > budget:
        pick = torch.randperm(len(combos), generator=torch.Generator().manual_seed(seed))[:budget]
        combos = [combos[k] for k in sorted(pick.tolist())]
    return combos


def tune(name: str, data: RecData, grid: dict[str, list[Any]], budget: int, seed: int = 0,
         progress: bool = True, fixed: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any], list[dict]]:
    """Tune baseline ``name`` on validation.

    Args:
        grid: parameter -> candidate values.
        budget: maximum number of configurations fitted.
        fixed: parameters added to every configuration (e.g. the shared MF teacher).

    Returns:
        ``(best_scorer, best_params, trials)``; each trial is a dict with ``params``,
        ``setting``, ``metric``, ``value``, ``seconds``, ``epochs_run``, ``best_epoch``.
    """
    spec = get_baseline(name)
    best, best_params, best_val, trials = None, {}, float("-inf"), []
    for params in expand_grid(grid, budget, seed):
        params = {**(fixed or {}), **params}
        t0 = time.time()
        scorer = spec.fit(data, params, seed, progress)
        val = validation_score(scorer, data, spec.val_setting, METRIC)
        hist = getattr(scorer, "history", {})
        trials.append({"params": params, "setting": spec.val_setting, "metric": METRIC, "value": val,
                       "seconds": round(time.time() - t0, 2), "epochs_run": hist.get("epochs_run", 0),
                       "best_epoch": hist.get("best_epoch", 0)})
        if val > best_val:
            best, best_params, best_val = scorer, params, val
    return best, best_params, trials


def tune_all(data: RecData, config=None, progress: bool | None = None) -> dict[str, dict[str, Any]]:
    """Tune every baseline of ``config`` (a :class:`BaselinesConfig`) in order.

    With ``config.share_teacher`` the tuned MF-BPR parameters become the ``teacher`` of
    DropoutNet, Heater and ALDI (unless their grid names one), so the distillation baselines
    start from the best warm model found on validation.

    Returns:
        name -> ``{"scorer", "params", "trials", "budget", "grid", "seconds", "supports_cold",
        "val_setting"}``.
    """
    from graphrec.baselines.config import BaselinesConfig

    config = config or BaselinesConfig()
    progress = config.progress if progress is None else progress
    out: dict[str, dict[str, Any]] = {}
    teacher: dict[str, Any] | None = None
    for name in config.names:
        spec = get_baseline(name)
        grid = config.grid_of(name)
        fixed = {}
        if spec.uses_teacher and config.share_teacher and "teacher" not in grid and teacher is not None:
            fixed["teacher"] = teacher
        t0 = time.time()
        with num_threads(config.num_threads):
            scorer, params, trials = tune(name, data, grid, config.budget_of(name), config.seed, progress, fixed)
        out[name] = {"scorer": scorer, "params": params, "trials": trials, "budget": config.budget_of(name),
                     "grid": grid, "seconds": round(time.time() - t0, 2), "supports_cold": spec.supports_cold,
                     "val_setting": spec.val_setting}
        if name == "mf_bpr":
            teacher = dict(params)
    return out


def summary(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """JSON-able budget record for the report: chosen params, trials, epochs and time per baseline."""
    return {n: {k: v for k, v in r.items() if k != "scorer"} for n, r in results.items()}
