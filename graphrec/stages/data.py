"""Data stages: raw data -> prepared tables -> split files -> item features.

Each reads files and writes files under its own directory of the run (:class:`graphrec.paths.RunPaths`).
"""

from __future__ import annotations

import json
from pathlib import Path

from graphrec.config import Config
from graphrec.paths import RunPaths
from graphrec.signatures import file_signature
from graphrec.stages.base import run_stage



def stage_prepare(cfg: Config, force: bool = False, log=print) -> dict:
    """Raw data -> canonical tables + prep report (printed)."""
    src = Path(cfg.data.source)
    if cfg.data.format == "ml1m-mm":
        files = [src / "interactions.csv", src / "items.csv", src / (cfg.data.users_file or "users.dat")]
    else:
        files = [src / cfg.data.interactions_file, src / cfg.data.items_file]
        if cfg.data.users_file:
            files.append(src / cfg.data.users_file)
    sigs = {str(f): file_signature(f) for f in files if f.exists()}
    out = cfg.paths.prepared

    def work() -> dict:
        if cfg.data.format == "ml1m-mm":
            from data_prep.ml1m_mm import prepare

            report = prepare(src, out, cfg.data.min_user_interactions, cfg.data.max_items, cfg.data.sample_seed,
                             users_file=cfg.data.users_file)
        else:
            from data_prep.generic import prepare, spec_from_config

            report = prepare(spec_from_config(cfg.data), out)
        log(report.summary())
        return report.to_dict()["kept"]

    code = ["graphrec.data.tables", "graphrec.data.report",
            "data_prep.ml1m_mm" if cfg.data.format == "ml1m-mm" else "data_prep.generic"]
    return run_stage("prepare", out, {"data": cfg.data.to_dict(), "files": sigs}, work, force, log, code=code)


def _log_split_counts(c: dict, log) -> None:
    log(f"  train={c['train_interactions']:,} val_warm={c['val_warm_interactions']:,} "
        f"test_warm={c['test_warm_interactions']:,} val_cold={c['val_cold_interactions']:,} "
        f"({c['cold_val_items']} items) test_cold={c['test_cold_interactions']:,} ({c['cold_test_items']} items)")


def stage_split(cfg: Config, force: bool = False, log=print, paths: RunPaths | None = None,
                kfold: tuple[int, int, int] | None = None) -> dict:
    """Canonical interactions -> the five split files + split.json.

    Args:
        paths: the run layout (default ``cfg.paths``; a benchmark run passes its own).
        kfold: ``(run, folds, fold_seed)`` for run ``run`` of the item k-fold benchmark
            (:func:`graphrec.data.split.kfold_split`) instead of the random cold split.
    """
    paths = paths or cfg.paths
    prepared = paths.prepared / "interactions.csv"
    out = paths.split

    def work() -> dict:
        from graphrec.data import cold_start_split, load_prepared, write_split
        from graphrec.data.split import item_folds, kfold_split

        inter, _ = load_prepared(paths.prepared)
        if kfold is None:
            split = cold_start_split(inter, cfg.split)
        else:
            run, k, fold_seed = kfold
            split = kfold_split(inter, item_folds(inter, k, fold_seed), run, k, cfg.split)
        write_split(split, out)
        _log_split_counts(split.info["counts"], log)
        return split.info["counts"]

    inputs = {"split": cfg.split.to_dict(), "interactions": file_signature(prepared), "kfold": kfold}
    return run_stage("split" if kfold is None else f"split run {kfold[0]}", out, inputs, work, force, log,
                     code=["graphrec.data.split"])


def stage_encode(cfg: Config, force: bool = False, log=print, progress: bool = True):
    """Items -> feature matrices per modality (the feature store skips what is already encoded)."""
    from graphrec.data.tables import load_prepared
    from graphrec.encoders import encode_items

    log(f"[encode] {', '.join(cfg.encoders.enabled)} -> {cfg.paths.features}")
    _, items = load_prepared(cfg.paths.prepared)
    features, report = encode_items(items, cfg.encoders, cfg.paths.features, progress=progress,
                                    device=cfg.resolved_device())
    (cfg.paths.features / "encode_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    for m, rep in report.get("modalities", {}).items():
        log(f"  {m}: {_short(rep)}")
    return features


def _short(rep: dict) -> str:
    keep = {k: v for k, v in rep.items() if isinstance(v, (int, float, str, dict)) and k not in ("fingerprint",)}
    return ", ".join(f"{k}={v}" for k, v in keep.items())[:300]


def load_data(cfg: Config, features=None, paths: RunPaths | None = None):
    """The run's RecData (prepared items + split + features)."""
    from graphrec.data import load_recdata

    paths = paths or cfg.paths
    return load_recdata(paths.prepared, paths.split, features)
