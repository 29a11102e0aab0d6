"""The evaluation suite: already-trained models on the test files, with every output of a run.

:func:`evaluate_suite` reads nothing but the scorers it is given (loaded from checkpoints by the
evaluate stage) and the split; it trains nothing and writes only under ``out_dir``:
``metrics.json`` (``{model: {setting: {metric: value}}}``), ``metrics_ci.json`` (bootstrap 95%
CIs over users), ``metrics_seeds.json`` (mean/std/CI over GraphRec seeds),
``missing_modality.json``, ``topk/<model>_<setting>.csv``, ``report.md`` and PNG plots. This is the
single read of the test files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.data.dataset import RecData
from graphrec.evaluation.config import EvalConfig
from graphrec.evaluation.index import EvalIndex
from graphrec.evaluation.protocol import evaluate
from graphrec.evaluation.topk_io import write_topk_files


def gap_closed(model: float, oracle: float, floor: float = 0.0) -> float:
    """Share of the floor-to-oracle gap a model closes: ``(model - floor) / (oracle - floor)``.

    ``floor`` is a reference without item knowledge (0, or e.g. the Random/Popularity
    baseline); NaN when the oracle does not beat the floor.
    """
    den = oracle - floor
    return (model - floor) / den if den > 0 and math.isfinite(den) else float("nan")


@dataclass
class SuiteModels:
    """What the suite evaluates, in report order.

    Attributes:
        scorers: model name -> scorer (``graphrec``, ``graphrec_seed<N>``, ``graphrec_ensemble``, baselines).
        seed_names: the rows that are GraphRec training seeds (aggregated over seeds).
        histories: model name -> per-epoch training history (training-curve plot).
        budgets: model name -> how it was selected/trained (report table).
        oracle: ``(oracle data, oracle model)`` for the warm-oracle rows, or None.
        remarks: extra report lines.
        teachers: baseline -> the warm model it was distilled from (explains identical warm rows).
        user_attrs: audit-only user attributes (:func:`graphrec.data.users.load_user_attributes`) or None.
        variants: ablation rows of GraphRec's mechanisms (:mod:`graphrec.evaluation.mechanisms`),
            evaluated in the cold setting only.
    """

    scorers: dict[str, Any]
    seed_names: list[str] = field(default_factory=list)
    histories: dict[str, list] = field(default_factory=dict)
    budgets: dict[str, Any] = field(default_factory=dict)
    oracle: tuple[RecData, Any] | None = None
    remarks: list[str] = field(default_factory=list)
    teachers: dict[str, str] = field(default_factory=dict)
    user_attrs: Any = None
    variants: dict[str, Any] = field(default_factory=dict)


class _Collected:
    """Per-model results of the suite (metrics, CIs, beyond-accuracy, buckets, notes)."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.ci: dict[str, dict] = {}
        self.notes: dict[str, dict] = {}
        self.beyond: dict[str, dict] = {}
        self.buckets: dict[str, dict] = {}
        self.evals: dict[str, Any] = {}


def _evaluate_all(models: SuiteModels, data: RecData, ev: EvalConfig, topk_dir: Path, progress: bool) -> _Collected:
    from graphrec.evaluation import beyond as B
    from graphrec.evaluation import stats

    col = _Collected()
    index = EvalIndex.build(data, "test")
    for name, scorer in models.scorers.items():
        res = evaluate(scorer, data, "test", ev.settings, ev.evaluated_ks, ev.batch_size, per_user=True, index=index,
                       model_name=name, progress=progress, topk_k=ev.topk_k)
        write_topk_files(res, data, topk_dir, name)
        col.evals[name] = res
        col.results[name] = {s: dict(v) for s, v in res.items()}
        if res.notes:
            col.notes[name] = dict(res.notes)
        if ev.bootstrap_samples:
            col.ci[name] = stats.bootstrap_result(res.per_user, ev.bootstrap_samples, ev.ci_level, ev.bootstrap_seed)
        col.beyond[name] = B.beyond_accuracy(res, data, ev.beyond_k, ev.tail_frac)
        col.buckets[name] = B.bucket_recall(res, data, ev.beyond_k, ev.popularity_buckets)
    for name, scorer in models.variants.items():  # mechanism ablations: cold items only
        res = evaluate(scorer, data, "test", ("cold",), ev.evaluated_ks, ev.batch_size, index=index, model_name=name,
                       topk_k=ev.topk_k)
        write_topk_files(res, data, topk_dir, name)
        col.results[name] = {s: dict(v) for s, v in res.items()}
    return col


def _missing_modality(models: SuiteModels, data: RecData, ev: EvalConfig, out_dir: Path) -> dict | None:
    """Across-seed cold metrics with each modality removed: writes ``missing_modality.json``, returns report rows."""
    from graphrec.evaluation import stats
    from graphrec.evaluation.missing import missing_modality_eval

    runs = [missing_modality_eval(models.scorers[n], data, "test", ev.evaluated_ks) for n in models.seed_names
            if len(getattr(models.scorers[n], "modalities", [])) > 1]
    if not runs:
        return None
    agg = stats.aggregate_seeds(runs, ev.ci_level)
    (out_dir / "missing_modality.json").write_text(json.dumps({"per_seed": runs, "seeds": agg}, indent=1) + "\n")
    metrics = (f"recall@{ev.beyond_k}", f"ndcg@{ev.main_k}")
    return {f"graphrec, {cond.replace('_', ' ')}": {f"{m} ({st})": v[m][st] for m in metrics if m in v for st in ("mean", "std")}
            for cond, v in agg.items()}


def _oracle_rows(models: SuiteModels, ev: EvalConfig) -> tuple[dict | None, str | None]:
    if models.oracle is None or not models.seed_names:
        return None, None
    odata, oracle_model = models.oracle
    main = models.scorers[models.seed_names[0]]
    k, n = f"recall@{ev.beyond_k}", f"ndcg@{ev.main_k}"
    o = evaluate(oracle_model, odata, "test", ["cold", "cold_full"], ev.evaluated_ks, ev.batch_size)
    m = evaluate(main, odata, "test", ["cold", "cold_full"], ev.evaluated_ks, ev.batch_size)
    rows = {}
    for s in ("cold", "cold_full"):
        rows[f"graphrec ({s})"] = {k: m[s][k], n: m[s][n]}
        rows[f"warm oracle ({s})"] = {k: o[s][k], n: o[s][n]}
        rows[f"gap closed ({s})"] = {k: gap_closed(m[s][k], o[s][k]), n: gap_closed(m[s][n], o[s][n])}
    return rows, f"warm oracle: {json.dumps(odata.oracle_report)}"


def evaluate_suite(models: SuiteModels, data: RecData, ev: EvalConfig, out_dir: str | Path, command: str = "",
                   progress: bool = False, log=print) -> dict[str, Any]:
    """Evaluate every model once on the test files and write the run's evaluation outputs.

    Returns:
        ``{"results", "seeds", "oracle", "missing_modality", "seconds", "report", "evals"}``
        (``evals``: model -> :class:`~graphrec.evaluation.protocol.EvalResult` with per-user arrays).
    """
    from graphrec.evaluation import plots, report, stats

    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"[evaluate] {len(models.scorers)} models on the test files: {', '.join(models.scorers)}")
    col = _evaluate_all(models, data, ev, out_dir / "topk", progress)
    seed_runs = [col.results[n] for n in models.seed_names]
    seed_stats = stats.aggregate_seeds(seed_runs, ev.ci_level) if seed_runs else {}
    missing_rows = _missing_modality(models, data, ev, out_dir)
    oracle_rows, oracle_remark = _oracle_rows(models, ev)
    remarks = list(models.remarks) + ([oracle_remark] if oracle_remark else [])
    for name in col.results:
        if "supports_cold" in str(col.notes.get(name, {})):
            remarks.append(f"{name} cannot score cold items (ID-only model); it is evaluated on warm only.")
    from graphrec.evaluation.explain import degenerate_row_notes

    remarks += [f"{m}: {why}" for m, why in degenerate_row_notes(col.results, models.teachers).items()]
    sections = []
    if ev.fairness:
        from graphrec.evaluation.fairness import run_fairness

        sections.append(run_fairness(col.evals, data, models.user_attrs, out_dir, ev, scorers=models.scorers, log=log))
    report.write_metrics_json(out_dir / "metrics.json", col.results)
    if col.ci:
        report.write_ci_json(out_dir / "metrics_ci.json", col.ci)
    (out_dir / "metrics_seeds.json").write_text(json.dumps({"graphrec": seed_stats}, indent=1) + "\n")
    pl = [plots.plot_metric_bars(col.results, out_dir / f"recall_at_{ev.main_k}.png", f"recall@{ev.main_k}", col.ci or None),
          plots.plot_bucket_recall(col.buckets, out_dir / "recall_by_popularity.png", metric=f"recall@{ev.beyond_k}"),
          plots.plot_training_curves({k: v for k, v in models.histories.items() if v}, out_dir / "training_curves.png")]
    if seed_stats:
        seed_line = "; ".join(f"{s} {m}: {v['mean']:.4f} ± {v['std']:.4f}" for s in ("cold", "warm", "hybrid")
                              for m, v in seed_stats.get(s, {}).items() if m in (f"recall@{ev.main_k}", f"ndcg@{ev.main_k}"))
        remarks.insert(0, f"GraphRec over seeds {[n for n in models.seed_names]} (mean ± std): {seed_line}")
    report.write_report_md(out_dir / "report.md", col.results, col.ci or None, col.notes, command, models.budgets,
                           beyond=col.beyond, buckets=col.buckets, oracle=oracle_rows, remarks=remarks,
                           plots=[p.name for p in pl], missing_modality=missing_rows, sections=sections,
                           metrics=report.table_metrics(ev.main_k))
    return {"results": col.results, "seeds": seed_stats, "oracle": oracle_rows, "missing_modality": missing_rows,
            "seconds": round(time.time() - t0, 1), "report": str(out_dir / "report.md"), "evals": col.evals}
