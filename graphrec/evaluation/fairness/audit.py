"""The fairness audit of every model's top-K lists, and its evaluation-stage driver.

:func:`fairness_audit` combines the item side (:mod:`.exposure`), the user side (:mod:`.groups`)
and the popularity inherited by cold items (:mod:`.inheritance`) into one JSON-able dict of group
aggregates; :func:`run_fairness` adds the re-ranking curves (:mod:`.curves`), writes
``fairness.json`` and the plots, and returns the report section (:mod:`.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from graphrec.data.dataset import RecData
from graphrec.evaluation.fairness.curves import CHOICES, choose_lambdas, rerank_curve
from graphrec.evaluation.fairness.exposure import exposure_counts, item_groupings, setting_exposure
from graphrec.evaluation.fairness.groups import USER_METRICS, group_quality, user_groupings
from graphrec.evaluation.fairness.inheritance import mean_item_scores, neighbour_popularity, spearman
from graphrec.evaluation.fairness.report import fairness_markdown, write_fairness
from graphrec.paths import EvaluationPaths


def fairness_audit(results: Mapping[str, Any], data: RecData, user_attrs=None, k: int = 20, *,
                   scorers: Mapping[str, Any] | None = None, n_buckets: int = 3, activity_buckets: int = 4,
                   min_group_users: int = 20, inheritance_k: int = 10, samples: int = 1000, level: float = 0.95,
                   seed: int = 0, batch_size: int = 1024) -> dict[str, Any]:
    """The whole audit (package docstring of :mod:`graphrec.evaluation.fairness`) for every model of ``results``.

    Args:
        results: ``{model: EvalResult}`` from ``evaluate(..., per_user=True)``, all the same phase
            (``.topk`` is required; ``.per_user`` for the user side).
        data: the split the results were computed on.
        user_attrs: table ``user_id`` + attribute columns (or None: activity groups only).
        k: the cut-off (must be <= the top-K lists' length and one of the evaluated ks).
        scorers: optional ``{model: scorer}`` for ``rho_score`` (cold mean scores).
        n_buckets: warm popularity quantile buckets of the item side.
        activity_buckets: history-length quantile buckets of the user side.
        min_group_users: user groups smaller than this are pooled.
        inheritance_k: content neighbours per cold item.
        samples / level / seed: bootstrap of the user-group intervals.
        batch_size: users per ``score`` call for ``rho_score``.

    Returns:
        JSON-able ``{"k", "phase", "item_groupings", "user_groupings", "inheritance_reference",
        "models": {model: {"exposure": {setting: ...}, "users": {setting: {grouping: ...}},
        "inheritance": {...}}}}``; group aggregates only.
    """
    from graphrec.evaluation.index import setting_specs

    phases = {getattr(r, "phase", "test") for r in results.values()}
    if len(phases) > 1:
        raise ValueError(f"fairness_audit: results mix phases {sorted(phases)}")
    phase = phases.pop() if phases else "test"
    specs = setting_specs(data, phase)
    igroups = item_groupings(data, phase, n_buckets)
    ugroups = user_groupings(data, user_attrs, activity_buckets)
    metrics = [f"{m}@{k}" for m in USER_METRICS]
    cold_items = torch.unique((data.cold_test_items if phase == "test" else data.cold_val_items).long())
    npop, inh_note = None, None
    if cold_items.numel() >= 2 and data.features:
        npop = neighbour_popularity(data, cold_items, inheritance_k)
    else:
        inh_note = "no item features" if not data.features else "fewer than two cold items"
    audit: dict[str, Any] = {
        "k": k, "phase": phase,
        "item_groupings": {n: list(lb) for n, (_, lb) in igroups.items()},
        "user_groupings": {n: {"n_groups": len(lb), "n_users_with_group": int((g >= 0).sum())}
                           for n, (g, lb) in ugroups.items()},
        "min_group_users": min_group_users, "inheritance_k": inheritance_k,
        "models": {},
    }
    if npop is not None:
        test_pos = torch.bincount(specs["cold"].positives[1], minlength=data.num_items)[cold_items]
        audit["inheritance_reference"] = {"n_items": int(cold_items.numel()),
                                          "rho_test_positives": spearman(test_pos.double(), npop)}
    else:
        audit["inheritance_reference"] = {"note": inh_note}
    for name, res in results.items():
        audit["models"][name] = {
            "exposure": _model_exposure(name, res, specs, data, igroups, k),
            "users": _model_users(res, ugroups, metrics, k, samples, level, seed, min_group_users),
            "inheritance": _model_inheritance(name, res, data, cold_items, npop, inh_note, k, scorers, batch_size),
        }
    return audit


def _model_exposure(name: str, res, specs, data: RecData, igroups, k: int) -> dict[str, Any]:
    """``{setting: setting_exposure(...)}`` of one model's top-K lists."""
    out = {}
    for s, (_, top) in res.topk.items():
        if top.size(1) < k:
            raise ValueError(f"fairness_audit: {name} {s} top-K lists have {top.size(1)} ranks < k={k}")
        out[s] = setting_exposure(top, specs[s], data, igroups, k)
    return out


def _model_users(res, ugroups, metrics: list[str], k: int, samples: int, level: float, seed: int,
                 min_group_users: int) -> dict[str, Any]:
    """``{setting: {grouping: group_quality(...)}}`` of one model's per-user metrics."""
    out: dict[str, Any] = {}
    for s, arrays in (res.per_user or {}).items():
        missing = [m for m in metrics if m not in arrays]
        if missing:
            out[s] = {"note": f"per-user arrays lack {missing}: evaluate with ks containing {k}"}
            continue
        out[s] = {gname: group_quality(arrays, g, lb, metrics, samples, level, seed, min_group_users)
                  for gname, (g, lb) in ugroups.items()}
    return out


def _model_inheritance(name: str, res, data: RecData, cold_items: torch.Tensor, npop: torch.Tensor | None,
                       inh_note: str | None, k: int, scorers: Mapping[str, Any] | None, batch_size: int) -> dict[str, Any]:
    """``rho_exposure`` (and ``rho_score`` when ``scorers`` has the model) of one model, or a note saying why not."""
    inh: dict[str, Any] = {}
    if npop is not None and "cold" in res.topk:
        slots = exposure_counts(res.topk["cold"][1], data.num_items, k)[cold_items]
        inh["rho_exposure"] = spearman(slots.double(), npop)
        if scorers and name in scorers:
            sig = mean_item_scores(scorers[name], res.topk["cold"][0], cold_items, batch_size)
            inh["rho_score"] = spearman(sig, npop)
    elif npop is None:
        inh["note"] = inh_note
    else:
        inh["note"] = "no cold setting (model cannot score cold items)"
    return inh


def run_fairness(results: Mapping[str, Any], data: RecData, user_attrs, out_dir: str | Path, eval_cfg,
                 scorers: Mapping[str, Any] | None = None, log=print) -> str:
    """The evaluation-stage driver: audit, re-ranking curves, ``fairness.json``, plots; returns Markdown.

    Args:
        results: ``{model: EvalResult}`` of ``evaluate(scorer, data, "test", ..., per_user=True)``.
        data: the split.
        user_attrs: :func:`graphrec.data.users.load_user_attributes` of the prepared directory, or None.
        out_dir: the evaluation directory (writes ``fairness.json``, ``fairness_exposure.png``,
            ``fairness_users.png`` and ``fairness_rerank.png``).
        eval_cfg: :class:`~graphrec.evaluation.config.EvalConfig` (``beyond_k``,
            ``popularity_buckets``, ``activity_buckets``, ``fairness_min_group_users``,
            ``inheritance_neighbors``, bootstrap settings, ``rerank_lambdas``,
            ``rerank_tolerance``, ``rerank_models``, ``batch_size``).
        scorers: ``{model: scorer}``; enables ``rho_score`` and, for ``eval_cfg.rerank_models``,
            the re-ranking curves (lambda chosen on validation, curve reported on test).

    Returns:
        the report section (:func:`fairness_markdown`), plots linked by file name.
    """
    from graphrec.evaluation import plots

    ev = eval_cfg
    out = Path(out_dir)
    k = ev.beyond_k
    audit = fairness_audit(results, data, user_attrs, k, scorers=scorers, n_buckets=ev.popularity_buckets,
                           activity_buckets=ev.activity_buckets, min_group_users=ev.fairness_min_group_users,
                           inheritance_k=ev.inheritance_neighbors, samples=ev.bootstrap_samples, level=ev.ci_level,
                           seed=ev.bootstrap_seed, batch_size=ev.batch_size)
    rerank: dict[str, Any] = {}
    for m in ev.rerank_models:
        if not scorers or m not in scorers or not ev.rerank_lambdas:
            continue
        val = rerank_curve(scorers[m], data, ev.rerank_lambdas, "val", k, ev.batch_size)
        if not val:
            continue
        chosen = choose_lambdas(val, ev.rerank_tolerance, k)
        test = rerank_curve(scorers[m], data, ev.rerank_lambdas, "test", k, ev.batch_size)
        rerank[m] = {"val": val, "test": test, "chosen": chosen, "tolerance": ev.rerank_tolerance,
                     "select_phase": "val", "report_phase": "test"}
        log(f"[evaluate] exposure re-ranking {m}: lambdas chosen on validation: "
            + ", ".join(f"{c} {chosen[c]:g}" for c in CHOICES))
    audit["rerank"] = rerank
    write_fairness(EvaluationPaths(out).fairness, audit)
    pl = [plots.plot_exposure_vs_relevance(audit, out / "fairness_exposure.png"),
          plots.plot_user_group_quality(audit, out / "fairness_users.png")]
    if rerank:
        pl.append(plots.plot_rerank_curve(rerank, out / "fairness_rerank.png", k))
    return fairness_markdown(audit, plots=[p.name for p in pl])
