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
    sigs = {str(f): file_signature(f) for f in files if f.is_file()}
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
    from graphrec.data.report import DataError

    paths = paths or cfg.paths
    prepared = paths.prepared / "interactions.csv"
    out = paths.split
    if not prepared.is_file():
        raise DataError(prepared, "prepared data not found; run `graphrec prepare` first")

    def work() -> dict:
        from graphrec.data import cold_start_split, load_prepared, write_split
        from graphrec.data.split import check_split, item_folds, kfold_split

        inter, _ = load_prepared(paths.prepared)
        if kfold is None:
            split = cold_start_split(inter, cfg.split)
        else:
            run, k, fold_seed = kfold
            split = kfold_split(inter, item_folds(inter, k, fold_seed), run, k, cfg.split)
        check_split(split, cfg.split, cfg.train.val_setting, prepared)
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
    check_template_columns(cfg, items, cfg.paths.prepared / "items.csv")
    features, report = encode_items(items, cfg.encoders, cfg.paths.features, progress=progress,
                                    device=cfg.resolved_device())
    (cfg.paths.features / "encode_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    for m, rep in report.get("modalities", {}).items():
        log(f"  {m}: {_short(rep)}")
    check_features(cfg, features, cfg.paths.features / "encode_report.json", log)
    return features


def check_features(cfg: Config, features, report_path: Path, log=print) -> None:
    """A modality no item has usable input for is useless to the model: a note, or (when every
    modality the model reads is empty) a :class:`~graphrec.config.ConfigError` naming the keys."""
    from graphrec.config import ConfigError

    empty = [m for m, f in features.items() if not bool(f.mask.any())]
    if not empty:
        return
    why = {"image": "no item has a readable image" + ("" if cfg.data.format == "ml1m-mm" or cfg.data.image_col
                                                      else " (data.image_col is not set)"),
           "text": "every item's text is empty (check encoders.text.template and data.text_cols)"}
    read = [m for m in cfg.model.modalities if m in features]
    if read and all(m in empty for m in read):
        raise ConfigError(f"encoders.enabled / model.modalities {read}: {'; '.join(why.get(m, m) for m in read)}, "
                          f"so the model would have no item content to learn from (see {report_path})")
    for m in empty:
        log(f"[encode] note: {m}: {why.get(m, 'no item has usable input')}; the model learns nothing from it")


def check_template_columns(cfg: Config, items, where: Path) -> None:
    """A :class:`~graphrec.config.ConfigError` naming ``encoders.text.template`` when it names a
    column the prepared items table lacks (the default template falls back to ``text`` instead)."""
    from graphrec.config import ConfigError, template_error
    from graphrec.encoders.template import DEFAULT_TEMPLATE, parse_template

    tpl = cfg.encoders.text.template
    if "text" not in cfg.encoders.enabled or tpl is None or tpl == DEFAULT_TEMPLATE:
        return
    missing = [f for f in parse_template(tpl).fields if f not in items.columns]
    if missing:
        raise ConfigError(template_error(tpl, missing, list(items.columns), str(where)))


def check_training_data(data, cfg: Config, paths: RunPaths) -> None:
    """A :class:`~graphrec.data.report.DataError` naming the split file when training has nothing to work on."""
    from graphrec.data.report import DataError

    n_items = int(data.train[1].unique().numel())
    if data.train.shape[1] < 2 or n_items < 2:
        raise DataError(paths.split / "train.csv", f"{data.train.shape[1]} training interaction(s) over "
                        f"{n_items} warm item(s): nothing to train on (rerun `graphrec split`; "
                        "lower split.cold_item_frac)")
    vs = cfg.train.val_setting
    files = {"cold": ["val_cold"], "cold_full": ["val_cold"], "warm": ["val_warm"], "hybrid": ["val_warm", "val_cold"]}[vs]
    if sum(data.edges(f).shape[1] for f in files) == 0:
        raise DataError(paths.split / f"{files[0]}.csv", f"no validation interactions for train.val_setting={vs!r} "
                        "(early stopping has nothing to select on)")


def _short(rep: dict) -> str:
    keep = {k: v for k, v in rep.items() if isinstance(v, (int, float, str, dict)) and k not in ("fingerprint",)}
    return ", ".join(f"{k}={v}" for k, v in keep.items())[:300]


def load_data(cfg: Config, features=None, paths: RunPaths | None = None):
    """The run's RecData (prepared items + split + features)."""
    from graphrec.data import load_recdata

    paths = paths or cfg.paths
    return load_recdata(paths.prepared, paths.split, features)
