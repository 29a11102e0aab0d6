"""Benchmark statistics and report: across runs, paired against every baseline, and within runs.

Reads only what the runs wrote (``run<r>/evaluation/metrics.json``, ``run<r>/evaluation/topk/``,
``run<r>/split/``, ``run<r>/baselines/*/tuning.json``) and writes ``benchmark/summary.json``
(the documented format), ``benchmark/report.md`` and ``benchmark/per_run.png``:

* per model, setting and metric: the per-run values, their mean and a Student-t 95% interval
  over runs (runs are the independent replicates: disjoint cold-test item folds);
* GraphRec against each baseline: the per-run ratio, its mean, a paired t interval over runs
  and the number of runs won; a difference counts as resolved only when that interval excludes 1;
* within each run, the uncertainty from the item draw: a paired bootstrap over the cold-test
  items (rankings fixed; :func:`graphrec.evaluation.stats.item_bootstrap`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from graphrec.config import Config
from graphrec.evaluation.stats import item_bootstrap, paired_ratio, t_interval

METRICS = ("recall@20", "ndcg@20")
MAIN = "graphrec"


def _metrics(cfg: Config, runs: Sequence[int]) -> list[dict]:
    out = []
    for r in runs:
        p = cfg.paths.benchmark_run(r).evaluation / "metrics.json"
        if not p.exists():
            raise FileNotFoundError(f"{p}: benchmark run {r} has not been evaluated (run `graphrec benchmark`)")
        out.append(json.loads(p.read_text()))
    return out


def _item_bootstrap_run(cfg: Config, run: int, models: Sequence[str], samples: int, level: float) -> dict:
    """Within-run cold-setting intervals from resampling the cold-test items (paired across models)."""
    paths = cfg.paths.benchmark_run(run)
    pos = pd.read_csv(paths.split / "test_cold.csv", dtype=str)
    uid = {u: j for j, u in enumerate(sorted(pos["user_id"].unique()))}
    iid = {i: j for j, i in enumerate(sorted(pos["item_id"].unique()))}
    positives = torch.tensor(np.stack([pos["user_id"].map(uid).to_numpy(), pos["item_id"].map(iid).to_numpy()]))
    items = torch.arange(len(iid))
    draws: dict[str, torch.Tensor] = {}
    for m in models:
        f = paths.evaluation / "topk" / f"{m}_cold.csv"
        if not f.exists():
            continue
        top = pd.read_csv(f, dtype={"user_id": str, "item_id": str})
        top = top[top["user_id"].isin(uid) & top["rank"].le(20)]
        users = sorted(uid.values())
        mat = torch.full((len(users), 20), -1, dtype=torch.long)
        mat[torch.tensor(top["user_id"].map(uid).to_numpy()), torch.tensor(top["rank"].to_numpy() - 1)] = torch.tensor(
            top["item_id"].map(lambda i: iid.get(i, -1)).to_numpy(dtype=np.int64))
        draws[m] = item_bootstrap(torch.tensor(users), mat, positives, items, 20, samples, seed=run)
    a = (1 - level) / 2
    q = torch.tensor([a, 1 - a], dtype=torch.float64)
    out: dict[str, Any] = {"models": {}, "paired": {}}
    for m, d in draws.items():
        lo, hi = torch.quantile(d, q, dim=0).tolist()
        out["models"][m] = {met: [lo[j], hi[j]] for j, met in enumerate(METRICS)}
    if MAIN in draws:
        for m, d in draws.items():
            if m == MAIN:
                continue
            ratio = draws[MAIN] / d.clamp_min(1e-12)
            lo, hi = torch.quantile(ratio, q, dim=0).tolist()
            out["paired"][m] = {met: [lo[j], hi[j]] for j, met in enumerate(METRICS)}
    return out


def _budgets(cfg: Config, runs: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in cfg.baselines.names if cfg.suite.baselines else []:
        rows = []
        for r in runs:
            p = cfg.paths.benchmark_run(r).baseline(name) / "tuning.json"
            if not p.exists():
                continue
            t = json.loads(p.read_text())
            best = max(t["trials"], key=lambda x: x["value"]) if t["trials"] else {}
            rows.append({"run": r, "configs": len(t["trials"]), "best_epoch": best.get("best_epoch"),
                         "epochs_run": best.get("epochs_run"), "epoch_cap": best.get("epoch_cap"),
                         "params": t["params"], "tuned_here": t.get("tuned_here", True)})
        out[name] = rows
    return out


def summarize(cfg: Config, runs: Sequence[int]) -> dict[str, Any]:
    """``summary.json`` content (see the module docstring and issue 12's format)."""
    b = cfg.benchmark
    per_run = _metrics(cfg, runs)
    models = [m for m in per_run[0] if all(m in r for r in per_run)]
    out: dict[str, Any] = {"runs": len(runs), "folds": b.folds, "run_ids": list(runs), "models": {}, "paired": {},
                           "within_run": {}, "budgets": _budgets(cfg, runs)}
    for m in models:
        out["models"][m] = {}
        for s in per_run[0][m]:
            if not all(s in r[m] for r in per_run):
                continue
            out["models"][m][s] = {}
            for met in METRICS:
                vals = [r[m][s][met] for r in per_run]
                ti = t_interval(vals, b.ci_level)
                out["models"][m][s][met] = {"mean": ti["mean"], "ci95": ti["ci95"], "per_run": vals}
    if MAIN in out["models"]:
        for m in models:
            if m == MAIN or m.startswith(MAIN):
                continue
            out["paired"][m] = {}
            for s, per in out["models"][m].items():
                if s not in out["models"][MAIN]:
                    continue
                out["paired"][m][s] = {met: paired_ratio(out["models"][MAIN][s][met]["per_run"], per[met]["per_run"], b.ci_level)
                                       for met in METRICS}
    if b.item_bootstrap:
        for r in runs:
            out["within_run"][str(r)] = _item_bootstrap_run(cfg, r, models, b.item_bootstrap, b.ci_level)
    return out


def write_summary(cfg: Config, runs: Sequence[int], log=print, command: str | None = None) -> dict[str, Any]:
    """Compute and write ``summary.json``, ``report.md`` and ``per_run.png`` under ``benchmark/``."""
    from graphrec.benchmark.report import plot_per_run, render_report

    out_dir = cfg.paths.benchmark
    summary = summarize(cfg, runs)
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=float) + "\n")
    tmp.replace(out_dir / "summary.json")
    plot_per_run(summary, out_dir / "per_run.png")
    (out_dir / "report.md").write_text(render_report(summary, cfg, command or "graphrec benchmark --config ...",
                                                     plots=["per_run.png"]))
    log(f"[benchmark] wrote {out_dir / 'summary.json'}, {out_dir / 'report.md'}")
    return summary
