"""Pipeline stages: each reads files, writes files, and skips work whose outputs are up to date.

A stage is up to date when its output directory holds a ``stage.json`` stamp whose inputs
fingerprint (config section + the files it reads) equals the current one.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from graphrec.config import Config


def file_signature(path: Path) -> str:
    """Size + sha256 of the content: changes exactly when the file's bytes do.

    Timestamps are deliberately left out, so a data set copied or re-mounted elsewhere (new
    mtimes, same bytes) does not invalidate the stages built from it.
    """
    from graphrec.encoders.base import file_sha256

    return hashlib.sha256(f"{path.stat().st_size}:{file_sha256(path)}".encode()).hexdigest()[:16]


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_stage(name: str, out_dir: Path, inputs: dict[str, Any], work: Callable[[], dict],
              force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run ``work`` unless ``out_dir/stage.json`` records the same inputs; returns the stamp."""
    stamp_path = out_dir / "stage.json"
    key = fingerprint(inputs)
    if not force and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("inputs") == key:
            log(f"[{name}] up to date ({out_dir})")
            return stamp
    t0 = time.time()
    log(f"[{name}] running -> {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = work() or {}
    stamp = {"stage": name, "inputs": key, "seconds": round(time.time() - t0, 2), "summary": summary,
             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp = stamp_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp, indent=2, default=str) + "\n")
    tmp.replace(stamp_path)
    return stamp


def stage_prepare(cfg: Config, force: bool = False, log=print) -> dict:
    """Raw data -> canonical tables + prep report (printed)."""
    src = Path(cfg.data.source)
    if cfg.data.format == "ml1m-mm":
        files = [src / "interactions.csv", src / "items.csv"]
    else:
        files = [src / cfg.data.interactions_file, src / cfg.data.items_file]
    sigs = {str(f): file_signature(f) for f in files if f.exists()}
    out = cfg.paths.prepared

    def work() -> dict:
        if cfg.data.format == "ml1m-mm":
            from data_prep.ml1m_mm import prepare

            report = prepare(src, out, cfg.data.min_user_interactions, cfg.data.max_items, cfg.data.sample_seed)
        else:
            from data_prep.generic import prepare, spec_from_config

            report = prepare(spec_from_config(cfg.data), out)
        log(report.summary())
        return report.to_dict()["kept"]

    return run_stage("prepare", out, {"data": cfg.data.to_dict(), "files": sigs}, work, force, log)


def stage_split(cfg: Config, force: bool = False, log=print) -> dict:
    """Canonical interactions -> the five split files + split.json."""
    prepared = cfg.paths.prepared / "interactions.csv"
    out = cfg.paths.split

    def work() -> dict:
        from graphrec.data import cold_start_split, load_prepared, write_split

        inter, _ = load_prepared(cfg.paths.prepared)
        split = cold_start_split(inter, cfg.split)
        write_split(split, out)
        c = split.info["counts"]
        log(f"  train={c['train_interactions']:,} val_warm={c['val_warm_interactions']:,} "
            f"test_warm={c['test_warm_interactions']:,} val_cold={c['val_cold_interactions']:,} "
            f"({c['cold_val_items']} items) test_cold={c['test_cold_interactions']:,} ({c['cold_test_items']} items)")
        return c

    return run_stage("split", out, {"split": cfg.split.to_dict(), "interactions": file_signature(prepared)}, work, force, log)


def stage_encode(cfg: Config, force: bool = False, log=print, progress: bool = True):
    """Items -> feature matrices per modality (the feature store skips what is already encoded)."""
    import json as _json

    from graphrec.data.tables import load_prepared
    from graphrec.encoders import encode_items

    log(f"[encode] {', '.join(cfg.encoders.enabled)} -> {cfg.paths.features}")
    _, items = load_prepared(cfg.paths.prepared)
    features, report = encode_items(items, cfg.encoders, cfg.paths.features, progress=progress)
    (cfg.paths.features / "encode_report.json").write_text(_json.dumps(report, indent=2, default=str) + "\n")
    for m, rep in report.get("modalities", {}).items():
        log(f"  {m}: {_short(rep)}")
    return features


def _short(rep: dict) -> str:
    keep = {k: v for k, v in rep.items() if isinstance(v, (int, float, str, dict)) and k not in ("fingerprint",)}
    return ", ".join(f"{k}={v}" for k, v in keep.items())[:300]


def load_data(cfg: Config, features=None):
    """The run's RecData (prepared items + split + features)."""
    from graphrec.data import load_recdata

    return load_recdata(cfg.paths.prepared, cfg.paths.split, features)


def model_config_for(cfg: Config, features, log=None):
    """``cfg.model`` restricted to the modalities the run actually has features for.

    E.g. ``encoders.enabled: [text]`` trains a text-only model instead of failing on the missing
    image features; the change is logged. Raises when none of the model's modalities is there.
    """
    have = [m for m in cfg.model.modalities if m in features]
    if not have:
        raise ValueError(f"model.modalities {cfg.model.modalities}: no such feature set was encoded "
                         f"(have {sorted(features)}); check encoders.enabled")
    if have == list(cfg.model.modalities):
        return cfg.model
    if log is not None:
        log(f"[train] model.modalities {cfg.model.modalities} -> {have} (no features for the others)")
    knn = [m for m in cfg.model.knn_modalities if m in features]
    return cfg.model.replace(modalities=have, knn_modalities=knn)


def stage_train(cfg: Config, features, force: bool = False, log=print, progress: bool = True) -> dict:
    """Train GraphRec on the split; writes model/checkpoint.pt (skipped when up to date).

    Also writes the run's whole config to ``run_dir/config.yaml`` (what serving reloads).
    """
    out = cfg.paths.model
    cfg.save_yaml(cfg.paths.root / "config.yaml")
    inputs = {"model": cfg.model.to_dict(), "train": cfg.train.to_dict(),
              "split": file_signature(cfg.paths.split / "train.csv"),
              "features": {k: v.fingerprint for k, v in features.items()}}

    def work() -> dict:
        from graphrec.training.trainer import train_graphrec

        data = load_data(cfg, features)
        _, history = train_graphrec(data, model_config_for(cfg, features, log), cfg.train, out, progress=progress)
        key = f"val/{cfg.train.val_setting}/{cfg.train.val_metric}"
        scored = [h for h in history if key in h]
        best = max(scored, key=lambda h: h[key], default={})
        best_val = {k: round(v, 4) for k, v in best.items() if k.startswith("val/")}
        log(f"  trained {len([h for h in history if 'epoch' in h])} epochs; best epoch {best.get('epoch')}: {best_val}")
        return {"epochs": len(scored), "best_epoch": best.get("epoch"), "best": best_val}

    stamp = run_stage("train", out, inputs, work, force or not (out / "checkpoint.pt").exists(), log)
    return stamp


def stage_evaluate(cfg: Config, features, force: bool = False, log=print, progress: bool = True) -> str:
    """GraphRec (all seeds) + baselines + warm oracle on the test files; report, plots, top-K files."""
    import sys

    from graphrec.evaluation.runner import run_suite

    out = cfg.paths.evaluation
    ckpt = cfg.paths.model / "checkpoint.pt"
    if not ckpt.exists():
        from graphrec.data.report import DataError

        raise DataError(ckpt, "no trained model; run `graphrec train` first")
    inputs = {"eval": cfg.eval.to_dict(), "suite": cfg.suite.to_dict(), "baselines": cfg.baselines.to_dict(),
              "model": file_signature(ckpt), "split": file_signature(cfg.paths.split / "test_cold.csv"),
              "model_cfg": cfg.model.to_dict(), "train_cfg": cfg.train.to_dict()}
    command = "graphrec " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("graphrec") else "graphrec run"

    def work() -> dict:
        data = load_data(cfg, features)
        res = run_suite(cfg, data, out, command=command, progress=progress, log=log)
        return {"seconds": res["seconds"], "models": list(res["results"]),
                "graphrec": res["results"].get("graphrec", {}), "seeds": res["seeds"]}

    stamp = run_stage("evaluate", out, inputs, work, force, log)
    g = stamp["summary"].get("graphrec", {})
    lines = ["", "graphrec finished.",
             f"  report:   {out / 'report.md'}",
             f"  metrics:  {out / 'metrics.json'} (top-K files in {out / 'topk'})",
             f"  plots:    {out / 'recall_at_20.png'}, {out / 'recall_by_popularity.png'}, {out / 'training_curves.png'}",
             f"  model:    {cfg.paths.model / 'checkpoint.pt'}  (try: graphrec recommend --config ... --user 1)"]
    for s in ("cold", "warm", "hybrid", "cold_full"):
        if s in g:
            lines.append(f"  graphrec {s:9s} recall@20={g[s]['recall@20']:.4f} ndcg@20={g[s]['ndcg@20']:.4f}")
    return "\n".join(lines)
