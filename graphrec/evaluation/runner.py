"""The evaluation suite: GraphRec over several seeds, every baseline, and the warm oracle, on one
split and the same item features, with metrics.json, top-K files, a Markdown report and plots.

Selection is on validation only (each model's early stopping / grid search); the test files are
read once here, after every model is fixed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec.config_base import ConfigError, StrictConfig, opt
from graphrec.data.dataset import RecData


@dataclass
class SuiteConfig(StrictConfig):
    """What the evaluation suite runs besides the trained model."""

    seeds: list[int] = opt([0, 1, 2], help="GraphRec training seeds (train.seed is replaced by each); the first is the main model (model/), the others are trained into model_seed<N>/. Mean and spread over seeds go to the report.")
    baselines: bool = opt(True, help="Tune and evaluate the baselines (section `baselines`).")
    oracle: bool = opt(True, help="Train the warm oracle (GraphRec that saw part of each cold-test item's users) and report the cold-to-warm gap closed.")
    ensemble: bool = opt(True, help="With two or more seeds: also evaluate their mean-of-scores ensemble (row graphrec_ensemble; no extra training) and record it in <run_dir>/ensemble.json, which serving then uses.")

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: at least one seed")


def _train(cfg, data: RecData, seed: int, out: Path, progress: bool):
    from graphrec.stages import model_config_for
    from graphrec.training.trainer import train_graphrec

    mcfg = model_config_for(cfg, data.features)
    model, history = train_graphrec(data, mcfg, cfg.train.replace(seed=seed), out, progress=progress)
    return model, history


def _model_for_seed(cfg, data: RecData, seed: int, progress: bool, log):
    """The main model (seed = first seed) is the trained checkpoint; other seeds are trained (cached)."""
    from graphrec.training.checkpoint import load_checkpoint

    main = cfg.paths.model
    if seed == cfg.suite.seeds[0] and (main / "checkpoint.pt").exists():
        return load_checkpoint(main / "checkpoint.pt"), _history(main)
    out = cfg.paths.root / f"model_seed{seed}"
    done = out / "done.json"
    key = {"model": cfg.model.to_dict(), "train": cfg.train.replace(seed=seed).to_dict(),
           "items": data.num_items, "train_edges": int(data.train.shape[1])}
    if done.exists() and json.loads(done.read_text()) == key and (out / "checkpoint.pt").exists():
        log(f"[evaluate] GraphRec seed {seed}: up to date ({out})")
        return load_checkpoint(out / "checkpoint.pt"), _history(out)
    log(f"[evaluate] training GraphRec seed {seed} -> {out}")
    model, history = _train(cfg, data, seed, out, progress)
    done.write_text(json.dumps(key))
    return model, history


def _history(d: Path) -> list[dict]:
    p = d / "history.json"
    return [h for h in json.loads(p.read_text()) if "epoch" in h] if p.exists() else []


def _missing_modality_rows(runs: list[dict], ev, out_dir: Path) -> dict[str, dict[str, float]]:
    """Across-seed cold metrics with each modality removed: writes ``missing_modality.json``, returns report rows."""
    from graphrec.evaluation import stats

    agg = stats.aggregate_seeds(runs, ev.ci_level)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "missing_modality.json").write_text(json.dumps({"per_seed": runs, "seeds": agg}, indent=1) + "\n")
    metrics = (f"recall@{ev.beyond_k}", "ndcg@20")
    return {f"graphrec, {cond.replace('_', ' ')}": {f"{m} ({st})": v[m][st] for m in metrics if m in v for st in ("mean", "std")}
            for cond, v in agg.items()}


def run_suite(cfg, data: RecData, out_dir: Path, command: str = "", progress: bool = True, log=print) -> dict[str, Any]:
    """Evaluate GraphRec (all seeds), the baselines and the warm oracle; write every output.

    Writes to ``out_dir``: ``metrics.json`` (``{model: {setting: {metric: value}}}``),
    ``metrics_ci.json`` (bootstrap 95% CIs over users), ``metrics_seeds.json`` (mean/std/CI over
    seeds), ``topk/<model>_<setting>.csv``, ``report.md`` and PNG plots.
    """
    from graphrec.evaluation import beyond as B
    from graphrec.evaluation import plots, report, stats
    from graphrec.evaluation.protocol import evaluate

    ev = cfg.eval
    out_dir = Path(out_dir)
    topk_dir = out_dir / "topk"
    results: dict[str, dict] = {}
    ci: dict[str, dict] = {}
    notes: dict[str, dict] = {}
    beyond: dict[str, dict] = {}
    buckets: dict[str, dict] = {}
    curves: dict[str, list] = {}
    budgets: dict[str, Any] = {}
    remarks: list[str] = []
    t0 = time.time()

    def run_eval(name: str, scorer, d: RecData = data, settings=None, write_topk: bool = True):
        res = evaluate(scorer, d, "test", settings or ev.settings, ev.ks, ev.batch_size,
                       topk_dir if write_topk else None, name if write_topk else None, per_user=True)
        results[name] = {s: dict(v) for s, v in res.items()}
        if res.notes:
            notes[name] = dict(res.notes)
        if ev.bootstrap_samples:
            ci[name] = stats.bootstrap_result(res.per_user, ev.bootstrap_samples, ev.ci_level, ev.bootstrap_seed)
        beyond[name] = B.beyond_accuracy(res, d, ev.beyond_k, ev.tail_frac)
        buckets[name] = B.bucket_recall(res, d, ev.beyond_k, ev.popularity_buckets)
        return res

    # GraphRec, every seed
    seed_runs, missing_runs, members = [], [], []
    for seed in cfg.suite.seeds:
        model, hist = _model_for_seed(cfg, data, seed, progress, log)
        members.append(model)
        name = "graphrec" if seed == cfg.suite.seeds[0] else f"graphrec_seed{seed}"
        run_eval(name, model)
        seed_runs.append(results[name])
        curves[name] = hist
        if len(model.modalities) > 1:  # cold items with one modality removed (issue 8)
            from graphrec.ablation import missing_modality_eval

            missing_runs.append(missing_modality_eval(model, data, "test", ev.ks))
    seed_stats = stats.aggregate_seeds(seed_runs, ev.ci_level)
    if cfg.suite.ensemble and len(members) > 1:
        from graphrec.nn.ensemble import GraphRecEnsemble, write_ensemble_manifest

        run_eval("graphrec_ensemble", GraphRecEnsemble(members))
        dirs = [cfg.paths.model if s == cfg.suite.seeds[0] else cfg.paths.root / f"model_seed{s}" for s in cfg.suite.seeds]
        write_ensemble_manifest(cfg.paths.root, dirs)
        budgets["graphrec_ensemble"] = {"members": f"the GraphRec models of seeds {list(cfg.suite.seeds)}",
                                        "score": "mean of the members' cosine scores"}
    missing_rows = _missing_modality_rows(missing_runs, ev, out_dir) if missing_runs else None
    budgets["graphrec"] = {"selection": f"early stopping on {cfg.train.val_setting}-validation {cfg.train.val_metric}",
                           "max_epochs": cfg.train.epochs, "seeds": list(cfg.suite.seeds)}

    # Baselines (tuned on validation)
    if cfg.suite.baselines:
        from graphrec.baselines.tune import summary, tune_all

        log(f"[evaluate] tuning baselines on validation: {', '.join(cfg.baselines.names)}")
        tuned = tune_all(data, cfg.baselines, progress=progress)
        for name, r in tuned.items():
            run_eval(name, r["scorer"])
        for name, r in summary(tuned).items():
            budgets[name] = {"configs tried": len(r.get("trials", [])), "budget": r.get("budget"),
                             "chosen": r.get("params"), "selected on": f"{r.get('val_setting')}-validation",
                             "seconds": r.get("seconds")}
        (out_dir / "baselines_tuning.json").parent.mkdir(parents=True, exist_ok=True)
        (out_dir / "baselines_tuning.json").write_text(json.dumps(summary(tuned), indent=1, default=str) + "\n")

    # Warm oracle: same cold-test items, part of their users moved into training
    oracle_rows = None
    if cfg.suite.oracle:
        from graphrec.evaluation.oracle import gap_closed, make_oracle_data

        odata = make_oracle_data(data, ev.oracle_frac, ev.oracle_seed)
        log(f"[evaluate] training the warm oracle ({odata.oracle_report['n_moved']:,} cold-test interactions moved to train)")
        oracle_model, _ = _train(cfg, odata, cfg.suite.seeds[0], cfg.paths.root / "model_oracle", progress)
        main_model = members[0]  # the first seed's model, already loaded above
        k = f"recall@{ev.beyond_k}"
        o = evaluate(oracle_model, odata, "test", ["cold", "cold_full"], ev.ks, ev.batch_size)
        m = evaluate(main_model, odata, "test", ["cold", "cold_full"], ev.ks, ev.batch_size)
        oracle_rows = {}
        for s in ("cold", "cold_full"):
            oracle_rows[f"graphrec ({s})"] = {k: m[s][k], "ndcg@20": m[s]["ndcg@20"]}
            oracle_rows[f"warm oracle ({s})"] = {k: o[s][k], "ndcg@20": o[s]["ndcg@20"]}
            oracle_rows[f"gap closed ({s})"] = {k: gap_closed(m[s][k], o[s][k]), "ndcg@20": gap_closed(m[s]["ndcg@20"], o[s]["ndcg@20"])}
        remarks.append(f"warm oracle: {json.dumps(odata.oracle_report)}")

    for name in results:
        if "supports_cold" in str(notes.get(name, {})):
            remarks.append(f"{name} cannot score cold items (ID-only model); it is evaluated on warm only.")
    out_dir.mkdir(parents=True, exist_ok=True)
    report.write_metrics_json(out_dir / "metrics.json", results)
    if ci:
        report.write_ci_json(out_dir / "metrics_ci.json", ci)
    (out_dir / "metrics_seeds.json").write_text(json.dumps({"graphrec": seed_stats}, indent=1) + "\n")
    pl = [plots.plot_recall_bars(results, out_dir / "recall_at_20.png", ci=ci or None),
          plots.plot_bucket_recall(buckets, out_dir / "recall_by_popularity.png"),
          plots.plot_training_curves({k: v for k, v in curves.items() if v}, out_dir / "training_curves.png")]
    seed_line = "; ".join(f"{s} {m}: {v['mean']:.4f} ± {v['std']:.4f}" for s in ("cold", "warm", "hybrid")
                          for m, v in seed_stats.get(s, {}).items() if m in ("recall@20", "ndcg@20"))
    remarks.insert(0, f"GraphRec over seeds {list(cfg.suite.seeds)} (mean ± std): {seed_line}")
    report.write_report_md(out_dir / "report.md", results, ci or None, notes, command, budgets,
                           beyond=beyond, buckets=buckets, oracle=oracle_rows, remarks=remarks,
                           plots=[p.name for p in pl], missing_modality=missing_rows)
    return {"results": results, "seeds": seed_stats, "oracle": oracle_rows, "missing_modality": missing_rows, "seconds": round(time.time() - t0, 1),
            "report": str(out_dir / "report.md")}
