"""Validation-only tuning of the baselines with a small recorded budget.

:func:`tune` tries at most ``budget`` configurations of a grid (a seeded subset when the grid
is larger), fits each with the same seed, scores it with the validator (cold-validation NDCG@20 for
cold-capable baselines, warm-validation NDCG@20 for MF-BPR/LightGCN) and keeps the best. Test
data is never read here.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import torch

from graphrec.baselines import get_baseline
from graphrec.baselines.common import METRIC, Validator
from graphrec.baselines.shared_fit import CACHED
from graphrec.data.dataset import RecData
from graphrec.training.seed import torch_threads


def expand_grid(grid: dict[str, list[Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """Cartesian product of ``grid`` (keys sorted); a seeded subset of ``budget`` if larger."""
    keys = sorted(grid)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
    if len(combos) > budget:
        pick = torch.randperm(len(combos), generator=torch.Generator().manual_seed(seed))[:budget]
        combos = [combos[k] for k in sorted(pick.tolist())]
    return combos


def tune(name: str, data: RecData, grid: dict[str, list[Any]], budget: int, seed: int, validate: Validator,
         progress: bool = True, fixed: dict[str, Any] | None = None, teacher=None,
         cache=None) -> tuple[Any, dict[str, Any], list[dict]]:
    """Tune baseline ``name`` on validation.

    Args:
        grid: parameter -> candidate values.
        budget: maximum number of configurations fitted.
        validate: the validator (validation files only).
        fixed: parameters added to every configuration.
        teacher: frozen (user, item) vectors for the teacher-based baselines.
        cache: a :class:`~graphrec.baselines.shared_fit.FitCache`: the trained baselines' fits are read
            from it when stored (another model of the run, or an interrupted tuning, fitted them) and
            stored in it otherwise; a trial's ``shared_fit`` says which.

    Returns:
        ``(best_scorer, best_params, trials)``; each trial is a dict with ``params``,
        ``setting``, ``metric``, ``value``, ``seconds``, ``epochs_run``, ``best_epoch``, ``epoch_cap``.
    """
    spec = get_baseline(name)
    best, best_params, best_val, trials = None, {}, float("-inf"), []
    key = f"{spec.val_setting}/{METRIC}"
    inert = spec.inert(data) if spec.inert else {}
    grid = {k: v for k, v in grid.items() if k not in inert}  # settings that do nothing here are not tuned
    for params in expand_grid(grid, budget, seed):
        params = {**(fixed or {}), **params}
        t0 = time.time()
        how = None
        if cache is not None and name in CACHED:
            scorer, how = cache.get_or_fit(name, params, seed, data,
                                           lambda p=params: spec.fit(data, p, seed, validate, progress, teacher), teacher)
        else:
            scorer = spec.fit(data, params, seed, validate, progress, teacher)
        val = validate(scorer, (spec.val_setting,))[key]
        hist = getattr(scorer, "history", {})
        trials.append({"params": params, "not_tuned": inert, "setting": spec.val_setting, "metric": METRIC, "value": val,
                       "seconds": round(time.time() - t0, 2), "epochs_run": hist.get("epochs_run", 0),
                       "best_epoch": hist.get("best_epoch", 0), "epoch_cap": hist.get("epoch_cap", 0),
                       **({"shared_fit": how} if how else {})})
        if val > best_val:
            best, best_params, best_val = scorer, params, val
    return best, best_params, trials


def tune_all(data: RecData, config, validate: Validator, progress: bool | None = None) -> dict[str, dict[str, Any]]:
    """Tune every baseline of ``config`` (a :class:`BaselinesConfig`) in order.

    With ``config.share_teacher`` the tuned MF-BPR's vectors become the ``teacher`` of
    DropoutNet, Heater and ALDI, so the distillation baselines start from the best warm model
    found on validation.

    Returns:
        name -> ``{"scorer", "params", "trials", "budget", "grid", "seconds", "supports_cold",
        "val_setting", "teacher"}``.
    """
    progress = config.progress if progress is None else progress
    out: dict[str, dict[str, Any]] = {}
    teacher, teacher_name = None, None
    for name in config.names:
        spec = get_baseline(name)
        grid = config.grid_of(name)
        use = teacher if spec.uses_teacher and config.share_teacher and "teacher" not in grid else None
        t0 = time.time()
        with torch_threads(config.num_threads):
            scorer, params, trials = tune(name, data, grid, config.budget_of(name), config.seed, validate, progress,
                                          teacher=use)
        out[name] = {"scorer": scorer, "params": params, "trials": trials, "budget": config.budget_of(name),
                     "grid": grid, "seconds": round(time.time() - t0, 2), "supports_cold": spec.supports_cold,
                     "val_setting": spec.val_setting, "teacher": teacher_name if use is not None else None}
        if name == "mf_bpr":
            teacher, teacher_name = (scorer.user_emb, scorer.item_emb), "mf_bpr"
    return out


def summary(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """JSON-able budget record for the report: chosen params, trials, epochs and time per baseline."""
    return {n: {k: v for k, v in r.items() if k != "scorer"} for n, r in results.items()}
