"""The evaluate stage: load every model the train stage wrote, evaluate once on test, write ``evaluation/``.

It trains nothing: a model whose directory has no finished train stamp (or whose checkpoint
changed since) is an error that says which model and why, so an interrupted training is never
evaluated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from graphrec.config import Config
from graphrec.data.report import DataError
from graphrec.paths import ModelPaths, RunPaths
from graphrec.signatures import file_signature
from graphrec.stages.base import outputs_verified, read_stamp, run_stage
from graphrec.stages.data import load_data

EVAL_CODE = ("graphrec.evaluation.suite",)


def _verified(path: Path, what: str) -> Path:
    ok, why = outputs_verified(path.parent)
    if not path.exists() or not ok:
        raise DataError(path, f"{what} is not a finished training ({why}); run `graphrec train` first")
    return path


def model_files(cfg: Config, paths: RunPaths) -> dict[str, Path]:
    """Every model file the evaluation reads, by report name (checked against its train stamp)."""
    first = cfg.suite.seeds[0]
    files: dict[str, Path] = {}
    for seed in cfg.suite.seeds:
        name = "graphrec" if seed == first else f"graphrec_seed{seed}"
        files[name] = _verified(ModelPaths(paths.model_dir(seed, first)).checkpoint, f"GraphRec (seed {seed})")
    if cfg.suite.oracle:
        files["oracle"] = _verified(ModelPaths(paths.oracle).checkpoint, "the warm oracle")
    if cfg.suite.baselines:
        for name in cfg.baselines.names:
            files[name] = _verified(ModelPaths(paths.baseline(name)).scorer, f"baseline {name}")
    return files


def _history(d: Path) -> list[dict]:
    p = ModelPaths(d).history
    return [h for h in json.loads(p.read_text()) if "epoch" in h] if p.exists() else []


def load_models(cfg: Config, paths: RunPaths, data, log=print):
    """The :class:`~graphrec.evaluation.suite.SuiteModels` of a trained run (GraphRec seeds, ensemble, baselines, oracle)."""
    from graphrec.baselines.store import load_scorer
    from graphrec.data.oracle import make_oracle_data
    from graphrec.evaluation.suite import SuiteModels
    from graphrec.training.checkpoint import load_checkpoint
    from graphrec.training.manifest import load_ensemble

    from graphrec.devices import move_scorer

    files = model_files(cfg, paths)
    models = SuiteModels(scorers={})
    first = cfg.suite.seeds[0]
    device = cfg.resolved_device()  # GraphRec models (and the ensemble) score there; baselines stay on the CPU
    for seed in cfg.suite.seeds:
        name = "graphrec" if seed == first else f"graphrec_seed{seed}"
        models.scorers[name] = move_scorer(load_checkpoint(files[name]), device)
        models.seed_names.append(name)
        models.histories[name] = _history(paths.model_dir(seed, first))
        calib = ModelPaths(paths.model_dir(seed, first)).calibration
        if seed == first and calib.exists():
            from graphrec.evaluation.mechanisms import mechanism_variants

            models.variants = mechanism_variants(models.scorers[name], json.loads(calib.read_text()))
    if cfg.suite.ensemble and len(cfg.suite.seeds) > 1:
        ens, why = load_ensemble(paths.ensemble_manifest)
        if ens is None:
            raise DataError(paths.ensemble_manifest, why)
        models.scorers["graphrec_ensemble"] = move_scorer(ens, device)
        models.budgets["graphrec_ensemble"] = {"members": f"the GraphRec models of seeds {list(cfg.suite.seeds)}",
                                               "score": "mean of the members' cosine scores"}
    models.budgets["graphrec"] = {"selection": f"early stopping on {cfg.train.val_setting}-validation {cfg.train.val_metric}",
                                  "max_epochs": cfg.train.epochs, "seeds": list(cfg.suite.seeds)}
    if cfg.suite.baselines:
        for name in cfg.baselines.names:
            models.scorers[name] = load_scorer(files[name])
            r = json.loads(ModelPaths(paths.baseline(name)).tuning.read_text())
            stamp = read_stamp(paths.baseline(name)) or {}
            not_tuned = next((t.get("not_tuned") for t in r.get("trials", []) if t.get("not_tuned")), None)
            models.budgets[name] = {"configs tried": len(r.get("trials", [])), "budget": r.get("budget"),
                                    "chosen": {k: v for k, v in (r.get("params") or {}).items() if k != "teacher"},
                                    "selected on": f"{r.get('val_setting')}-validation", "seconds": stamp.get("seconds"),
                                    **({"teacher": r["teacher"]} if r.get("teacher") else {}),
                                    **({"not tuned": not_tuned} if not_tuned else {})}
            if r.get("teacher"):
                models.teachers[name] = r["teacher"]
    if cfg.suite.oracle:
        odata = make_oracle_data(data, cfg.eval.oracle_frac, cfg.eval.oracle_seed)
        models.oracle = (odata, move_scorer(load_checkpoint(files["oracle"]), device))
    return models, files


def stage_evaluate(cfg: Config, features, force: bool = False, log=print, progress: bool = True,
                   paths: RunPaths | None = None) -> str:
    """Evaluate every trained model of the run on the test files; report, plots, top-K files."""
    from graphrec.evaluation.suite import evaluate_suite

    paths = paths or cfg.paths
    out = paths.evaluation
    data_files = {n: file_signature(paths.split / f"{n}.csv") for n in ("train", "val_warm", "val_cold", "test_warm", "test_cold")}
    files = model_files(cfg, paths)
    users = paths.prepared / "users.csv"
    suite = {k: v for k, v in cfg.suite.to_dict().items() if k != "jobs"}  # how training was parallelised is not an input
    inputs = {"eval": cfg.eval.to_dict(), "suite": suite, "baselines": cfg.baselines.names,
              "models": {n: file_signature(p) for n, p in files.items()}, "split": data_files,
              "users": file_signature(users) if users.exists() else None}
    command = "graphrec " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("graphrec") else "graphrec run"

    def work() -> dict:
        data = load_data(cfg, features, paths)
        models, _ = load_models(cfg, paths, data, log)
        res = evaluate_suite(models, data, cfg.eval, out, command=command, progress=False, log=log)
        return {"seconds": res["seconds"], "models": list(res["results"]),
                "graphrec": res["results"].get("graphrec", {}), "seeds": res["seeds"]}

    stamp = run_stage("evaluate", out, inputs, work, force, log, code=EVAL_CODE, outputs=[paths.evaluation_files.metrics.name])
    return summary_text(stamp["summary"].get("graphrec", {}), out, paths, cfg.eval.main_k)


def summary_text(g: dict[str, Any], out: Path, paths: RunPaths, k: int = 20) -> str:
    """What the run wrote, and GraphRec's headline numbers (every K that was evaluated)."""
    lines = ["", "graphrec finished.",
             f"  report:   {out / 'report.md'}",
             f"  metrics:  {out / 'metrics.json'} (top-K files in {out / 'topk'})",
             f"  plots:    {out / f'recall_at_{k}.png'}, {out / 'recall_by_popularity.png'}, {out / 'training_curves.png'}",
             f"  model:    {ModelPaths(paths.model).checkpoint}  (try: graphrec recommend --config ... --user 1)"]
    for s in ("cold", "warm", "hybrid", "cold_full"):
        if s in g:
            shown = " ".join(f"{m}={v:.4f}" for m, v in g[s].items() if m.split("@")[0] in ("recall", "ndcg"))
            lines.append(f"  graphrec {s:9s} {shown}")
    return "\n".join(lines)
