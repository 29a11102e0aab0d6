"""The train stage: every model a run needs, each with its own stamp and checkpoint.

* GraphRec, once per ``suite.seeds`` (``model/`` for the first seed, ``model_seed<N>/``), then
  warm refinement; the seed ensemble's manifest ``ensemble.json``;
* the warm oracle (``model_oracle/``) when ``suite.oracle``;
* every baseline of ``baselines.names`` (``baselines/<name>/scorer.pt`` + ``tuning.json``),
  tuned on validation (or fitted with given parameters, as benchmark runs after the first do).

A model is retrained exactly when its config, its data (split files it reads, feature
fingerprints), its teacher or its code changed (:mod:`graphrec.stages.base`); an interrupted
GraphRec training resumes from ``last.pt``. Only validation files are read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from graphrec.baselines.shared_fit import FitCache
from graphrec.config import Config
from graphrec.paths import ModelPaths, RunPaths
from graphrec.signatures import file_signature
from graphrec.stages.base import run_stage
from graphrec.stages.data import check_training_data, load_data

GRAPHREC_CODE = ("graphrec.recipes.graphrec", "graphrec.recipes.refine", "graphrec.recipes.backbone",
                 "graphrec.recipes.calibrate")
SCORER_FILE = "scorer.pt"


def _execution(cfg: Config, nproc: int, shared_fits=None) -> Execution:
    return Execution(device=cfg.device, nproc=nproc, val_ks=(20, int(cfg.train.val_metric.split("@")[1])),
                     eval_batch_size=cfg.eval.batch_size, shared_fits=shared_fits)


def split_signature(paths: RunPaths, names=("train", "val_warm", "val_cold")) -> dict[str, str]:
    """Signatures of the split files training reads (never the test files)."""
    return {n: file_signature(paths.split / f"{n}.csv") for n in names}


def _validator(data, cfg: Config):
    from graphrec.evaluation.protocol import make_validator

    k = int(cfg.train.val_metric.split("@")[1])
    return make_validator(data, ks=(20, k), batch_size=cfg.eval.batch_size)


@dataclass(frozen=True)
class Execution:
    """How training runs (never part of a stage's inputs: it changes speed, not what is trained).

    Attributes:
        device: the run's ``device`` option (graphrec.devices).
        nproc: processes for GraphRec's stage-1 training (>= 2: torchrun, graphrec.stages.ddp).
        val_ks, eval_batch_size: the validator the distributed workers build.
        shared_fits: the run's :class:`~graphrec.baselines.shared_fit.FitCache` (GraphRec's backbone is
            the LightGCN baseline's fit of the same parameters and seed: fitted once per run), or None.
    """

    device: str = "cpu"
    nproc: int = 1
    val_ks: tuple[int, ...] = (20,)
    eval_batch_size: int = 1024
    shared_fits: Any = None


def _train_graphrec_dir(name: str, out, data, model_cfg, train_cfg, inputs: dict, validator, force: bool, log,
                        progress: bool, execution: Execution = Execution()) -> dict:
    from graphrec.devices import resolve_device
    from graphrec.recipes.graphrec import train_graphrec
    from graphrec.recipes.backbone import backbone_checkpoint
    from graphrec.recipes.calibrate import calibrate_checkpoint
    from graphrec.recipes.refine import refine_checkpoint

    mp = ModelPaths(out)
    device = resolve_device(execution.device)

    def work(resume: bool = False) -> dict:
        if not resume:  # another configuration's (or an older) training must not be continued or served
            for p in (mp.checkpoint, mp.last):
                p.unlink(missing_ok=True)
        if execution.nproc > 1:
            from graphrec.stages.ddp import launch_train_graphrec

            log(f"  distributed training: {execution.nproc} processes (torchrun), device {execution.device}")
            history = launch_train_graphrec(data, model_cfg, train_cfg, out, execution.nproc, device=execution.device,
                                            val_ks=execution.val_ks, eval_batch_size=execution.eval_batch_size,
                                            resume=resume, progress=progress)
        else:
            _, history = train_graphrec(data, model_cfg, train_cfg, out, validator, progress=progress, resume=resume,
                                        device=device)
        refine_checkpoint(out, data, validator, progress, device=device)
        backbone_checkpoint(out, data, validator, progress, execution.shared_fits)
        calibrate_checkpoint(out, data, validator, progress)
        key = f"val/{train_cfg.val_setting}/{train_cfg.val_metric}"
        scored = [h for h in history if key in h]
        best = max(scored, key=lambda h: h[key], default={})
        best_val = {k: round(v, 4) for k, v in best.items() if k.startswith("val/")}
        log(f"  trained {len(history)} epochs; best epoch {best.get('epoch')}: {best_val}")
        return {"epochs": len(history), "epoch_cap": train_cfg.epochs, "best_epoch": best.get("epoch"), "best": best_val}

    return run_stage(name, out, {**inputs, "model": model_cfg.to_dict(), "train": train_cfg.to_dict()}, work, force, log,
                     code=GRAPHREC_CODE, outputs=[mp.checkpoint.name], resumable=True)


def train_graphrec_models(cfg: Config, data, paths: RunPaths, validator, force: bool = False, log=print,
                          progress: bool = True, nproc: int = 1, shared_fits=None) -> dict[str, dict]:
    """GraphRec for every seed of ``cfg.suite.seeds`` (+ the ensemble manifest); returns the stamps."""
    from graphrec.training.manifest import write_ensemble_manifest

    model_cfg = cfg.model.restricted_to(data.features)
    if model_cfg is not cfg.model:
        log(f"[train] model.modalities {cfg.model.modalities} -> {model_cfg.modalities} (no features for the others)")
    inputs = {"split": split_signature(paths), "features": {k: v.fingerprint for k, v in data.features.items()}}
    first = cfg.suite.seeds[0]
    stamps, dirs = {}, []
    for seed in cfg.suite.seeds:
        out = paths.model_dir(seed, first)
        name = "train graphrec" + ("" if seed == first else f" seed {seed}")
        stamps[f"graphrec_seed{seed}"] = _train_graphrec_dir(name, out, data, model_cfg, cfg.train.replace(seed=seed),
                                                            inputs, validator, force, log, progress,
                                                            _execution(cfg, nproc, shared_fits))
        dirs.append(out)
    if cfg.suite.ensemble and len(dirs) > 1:
        write_ensemble_manifest(paths.ensemble_manifest, dirs)
    else:
        paths.ensemble_manifest.unlink(missing_ok=True)
    return stamps


def train_oracle(cfg: Config, data, paths: RunPaths, force: bool = False, log=print, progress: bool = True,
                 nproc: int = 1, shared_fits=None) -> dict:
    """The warm oracle: GraphRec (first seed) trained with part of each cold-test item's users."""
    from graphrec.data.oracle import make_oracle_data
    from graphrec.evaluation.protocol import make_validator

    odata = make_oracle_data(data, cfg.eval.oracle_frac, cfg.eval.oracle_seed)
    log(f"[train] warm oracle: {odata.oracle_report['n_moved']:,} cold-test interactions moved to train")
    inputs = {"split": split_signature(paths, ("train", "val_warm", "val_cold", "test_cold")),
              "features": {k: v.fingerprint for k, v in data.features.items()},
              "oracle": {"frac": cfg.eval.oracle_frac, "seed": cfg.eval.oracle_seed}}
    k = int(cfg.train.val_metric.split("@")[1])
    return _train_graphrec_dir("train warm oracle", paths.oracle, odata, cfg.model.restricted_to(data.features),
                               cfg.train.replace(seed=cfg.suite.seeds[0]), inputs,
                               make_validator(odata, ks=(20, k), batch_size=cfg.eval.batch_size), force, log, progress,
                               _execution(cfg, nproc, shared_fits))


def _teacher_for(cfg: Config, paths: RunPaths, trained: dict[str, dict]) -> tuple[str | None, Any]:
    """The teacher of the teacher-based baselines: ``baselines.teacher`` (a warm model's name, or
    ``best_warm`` = the warm-only baseline with the best warm-validation NDCG@20)."""
    from graphrec.baselines.store import load_scorer

    if not cfg.baselines.share_teacher:
        return None, None
    want = cfg.baselines.teacher
    warm = {n: r for n, r in trained.items() if r.get("val_setting") == "warm" and r.get("best_value") is not None}
    if want == "best_warm":
        want = max(warm, key=lambda n: warm[n]["best_value"]) if warm else None
    if want is None or want not in trained:
        return None, None
    sc = load_scorer(paths.baseline(want) / SCORER_FILE)
    return want, (sc.user_emb, sc.item_emb)


def train_baselines(cfg: Config, data, paths: RunPaths, validator, force: bool = False, log=print, progress: bool = True,
                    fixed_params: dict[str, dict] | None = None, names: list[str] | None = None,
                    shared_fits=None) -> dict[str, dict]:
    """Tune (or, with ``fixed_params[name]``, just fit) and store every baseline; returns their records.

    ``names``: train only these (the others' stored records are read, e.g. for the teacher).
    ``shared_fits``: the run's :class:`~graphrec.baselines.shared_fit.FitCache` (fits of the trained
    baselines are read from it when another model or an interrupted tuning stored them).
    """
    from graphrec.baselines import get_baseline
    from graphrec.baselines.store import save_scorer
    from graphrec.baselines.tune import expand_grid, tune
    from graphrec.training.seed import torch_threads

    bcfg = cfg.baselines
    records: dict[str, dict] = {}
    base_inputs = {"split": split_signature(paths), "features": {k: v.fingerprint for k, v in data.features.items()},
                   "seed": bcfg.seed}
    for name in bcfg.names:
        spec = get_baseline(name)
        out = paths.baseline(name)
        if names is not None and name not in names:
            if (out / "tuning.json").exists():
                records[name] = json.loads((out / "tuning.json").read_text())
            continue
        teacher_name, teacher = _teacher_for(cfg, paths, records) if spec.uses_teacher else (None, None)
        fixed = (fixed_params or {}).get(name)
        grid = {k: [v] for k, v in fixed.items()} if fixed is not None else bcfg.grid_of(name)
        budget = 1 if fixed is not None else bcfg.budget_of(name)
        inputs = {**base_inputs, "grid": grid, "budget": budget,
                  "teacher": file_signature(paths.baseline(teacher_name) / SCORER_FILE) if teacher_name else None}

        def work(name=name, spec=spec, out=out, grid=grid, budget=budget, teacher=teacher, teacher_name=teacher_name,
                 fixed=fixed) -> dict:
            with torch_threads(bcfg.num_threads):
                scorer, params, trials = tune(name, data, grid, budget, bcfg.seed, validator, progress, teacher=teacher,
                                              cache=shared_fits)
            rec = {"params": params, "trials": trials, "budget": budget, "grid": grid, "supports_cold": spec.supports_cold,
                   "val_setting": spec.val_setting, "teacher": teacher_name,
                   "tuned_here": fixed is None, "best_value": max((t["value"] for t in trials), default=None),
                   "configs_in_grid": len(expand_grid(grid, 10**9, 0))}
            save_scorer(out / SCORER_FILE, scorer, meta={"name": name, "params": params})
            (out / "tuning.json").write_text(json.dumps(rec, indent=1, default=str) + "\n")
            v = rec["best_value"]
            log(f"  {name}: {len(trials)} configs, best {spec.val_setting}-val ndcg@20 "
                f"{v if v is None else round(v, 4)}, params {params}")
            return rec

        stamp = run_stage(f"train {name}", out, inputs, work, force, log, code=[spec.fit.__module__, "graphrec.baselines.tune",
                          "graphrec.baselines.store"], outputs=[SCORER_FILE, "tuning.json"])
        records[name] = json.loads((out / "tuning.json").read_text())
        records[name]["seconds"] = stamp["seconds"]
    return records


def lane_models(cfg: Config) -> dict[str, list[str]]:
    """The run's models in two lanes that can train in parallel: A = the warm-only baselines and the
    baselines taught by them (in order), B = GraphRec (+ oracle) and every other baseline.

    Entries are ``graphrec``, ``oracle`` and ``baseline:<name>`` (the names :func:`stage_train`'s ``only`` sees).
    """
    from graphrec.baselines import get_baseline

    chain = [n for n in cfg.baselines.names
             if get_baseline(n).val_setting == "warm" or get_baseline(n).uses_teacher] if cfg.suite.baselines else []
    rest = [n for n in cfg.baselines.names if n not in chain] if cfg.suite.baselines else []
    return {"A": [f"baseline:{n}" for n in chain], "B": ["graphrec"] + (["oracle"] if cfg.suite.oracle else [])
            + [f"baseline:{n}" for n in rest]}


def stage_train(cfg: Config, features, force: bool = False, log=print, progress: bool = True,
                paths: RunPaths | None = None, fixed_params: dict[str, dict] | None = None,
                only: Callable[[str], bool] | None = None, nproc: int = 1) -> dict:
    """Train every model of the run (see the module docstring); writes ``<run_dir>/config.yaml``.

    Args:
        paths: the run layout (default ``cfg.paths``; benchmark runs pass their own).
        fixed_params: per-baseline parameters to fit without tuning.
        only: optional filter on ``"graphrec" | "oracle" | "baseline:<name>"`` (what to train now).
        nproc: processes for each GraphRec training (>= 2: data-parallel with torchrun; the
            result is the same training up to float order and per-rank dropout draws).

    Returns:
        ``{"graphrec": stamps, "oracle": stamp | None, "baselines": records}``.
    """
    paths = paths or cfg.paths
    cfg.resolved_device()  # a device this machine lacks is a config error before anything runs
    paths.root.mkdir(parents=True, exist_ok=True)
    cfg.save_yaml(paths.config)
    data = load_data(cfg, features, paths)
    check_training_data(data, cfg, paths)
    validator = _validator(data, cfg)
    want = only or (lambda _: True)
    shared = FitCache(paths.shared_fits, refresh=force, log=log)
    out: dict[str, Any] = {"graphrec": {}, "oracle": None, "baselines": {}}
    if want("graphrec"):
        out["graphrec"] = train_graphrec_models(cfg, data, paths, validator, force, log, progress, nproc, shared)
    if cfg.suite.oracle and want("oracle"):
        out["oracle"] = train_oracle(cfg, data, paths, force, log, progress, nproc, shared)
    names = [n for n in cfg.baselines.names if want(f"baseline:{n}")]
    if cfg.suite.baselines and names:
        log(f"[train] baselines (selected on validation): {', '.join(names)}")
        out["baselines"] = train_baselines(cfg, data, paths, validator, force, log, progress, fixed_params, names,
                                           shared)
    return out
