"""`graphrec benchmark`: the item k-fold benchmark, resumable, with progress and an ETA.

Run ``r`` (``benchmark/run<r>/``) is a run directory of its own: a k-fold split (fold ``r``
cold-test, fold ``r + 1`` cold-validation), the train stage (GraphRec, every baseline) and the
evaluate stage, exactly as the main command does on one split, sharing the parent run's
prepared tables and feature store. Every model has its own stamp, so a killed benchmark
continues at the next unfinished model of the next unfinished run. Run 0 tunes the baselines
on its validation (``benchmark.tune_first_run_only``); the other runs reuse those parameters
(each model still early-stops on its own run's validation). With ``benchmark.jobs >= 2`` two lane
processes (:mod:`graphrec.benchmark.lanes`) share every run's models, one core each. Then :mod:`graphrec.benchmark.summary` writes ``summary.json``
and ``report.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from graphrec.benchmark.lanes import run_config, tuned_params
from graphrec.config import Config


def run_one(cfg: Config, run: int, features, force: bool = False, log=print, progress: bool = False) -> dict:
    """Split, train and evaluate benchmark run ``run`` (each step skipped when up to date)."""
    from graphrec.stages import stage_evaluate, stage_split, stage_train

    b = cfg.benchmark
    rcfg = run_config(cfg)
    paths = cfg.paths.benchmark_run(run)
    t0 = time.time()
    log(f"[benchmark] run {run}: cold-test fold {run}, cold-validation fold {(run + 1) % b.folds} -> {paths.root}")
    stage_split(rcfg, force, log, paths=paths, kfold=(run, b.folds, b.fold_seed))
    fixed = tuned_params(cfg.paths, rcfg.baselines.names) if (run > 0 and b.tune_first_run_only and rcfg.suite.baselines) else None
    stage_train(rcfg, features, force, log, progress, paths=paths, fixed_params=fixed)
    stage_evaluate(rcfg, features, force, log, progress, paths=paths)
    seconds = round(time.time() - t0, 1)
    (paths.root / "run.json").write_text(json.dumps({"run": run, "seconds_last_call": seconds,
                                                     "tuned_here": fixed is None}, indent=1) + "\n")
    return {"run": run, "seconds": seconds}


def _progress(cfg: Config, runs: list[int], session: str, t_start: float, log) -> None:
    from graphrec.benchmark.lanes import LANES, _marked

    done = [r for r in runs if _marked(cfg.paths.benchmark_run(r).root, "evaluated", session)]
    lanes = {ln: sum(_marked(cfg.paths.benchmark_run(r).root, f"lane{ln}", session) for r in runs) for ln in LANES}
    el = (time.time() - t_start) / 60
    eta = "ETA after the first evaluated run"
    if done:
        per_run = el / max(max(lanes.values()), 1)
        eta = f"ETA ~{per_run * (len(runs) - min(lanes.values())):.0f} min"
    log(f"[benchmark] {el:.0f} min: runs evaluated {done}; runs trained by lane A {lanes['A']}, lane B {lanes['B']}"
        f" of {len(runs)}; {eta}")


def _lanes(argv: Sequence[str], cfg: Config, runs: list[int], session: str, log, heartbeat: float = 60.0,
           force: bool = False, progress: bool = False) -> None:
    """Run the two lanes (:mod:`graphrec.benchmark.lanes`) as child processes until both finish."""
    root = cfg.paths.benchmark
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = {}
    for lane in ("A", "B"):
        logf = open(root / f"lane{lane}.log", "a")
        cmd = [sys.executable, "-m", "graphrec.cli", "benchmark", *argv, "--lane", lane, "--session", session,
               "--threads", "1", "--runs", str(cfg.benchmark.runs)] + (["--force"] if force else []) \
            + ([] if progress else ["--no-progress"])
        procs[lane] = (subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env), logf)
        log(f"[benchmark] lane {lane} started (log: {root / f'lane{lane}.log'})")
    t0, last = time.time(), 0.0
    while procs:
        time.sleep(5)
        if time.time() - last > heartbeat:
            _progress(cfg, runs, session, t0, log)
            last = time.time()
        for lane, (proc, logf) in list(procs.items()):
            if proc.poll() is None:
                continue
            logf.close()
            del procs[lane]
            if proc.returncode != 0:
                for p, f in procs.values():
                    p.terminate()
                raise RuntimeError(f"benchmark lane {lane} failed (exit {proc.returncode}); see {root / f'lane{lane}.log'}")
            log(f"[benchmark] lane {lane} finished")
    _progress(cfg, runs, session, t0, log)


def run_benchmark(cfg: Config, argv: Sequence[str] = (), runs: Sequence[int] | None = None, force: bool = False,
                  log=print, progress: bool = False, command: str = "graphrec benchmark") -> dict:
    """The whole benchmark: data stages once, then every run (two lanes with ``benchmark.jobs: 2``), then the summary.

    Args:
        argv: the command-line arguments (``--config``, ``--set``) handed to the lane processes.
        runs: which runs (default ``range(benchmark.runs)``).
    """
    import uuid

    from graphrec.benchmark.lanes import run_lane
    from graphrec.benchmark.summary import write_summary
    from graphrec.stages import stage_encode, stage_prepare
    from graphrec.training.seed import torch_threads

    b = cfg.benchmark
    runs = list(range(b.runs)) if runs is None else list(runs)
    t0 = time.time()
    stage_prepare(cfg, force, log)
    stage_encode(cfg, False, log, progress)
    cfg.paths.benchmark.mkdir(parents=True, exist_ok=True)
    n_models = 1 + (len(cfg.baselines.names) if cfg.suite.baselines else 0)
    log(f"[benchmark] {len(runs)} runs x {n_models} models, {b.folds} item folds (seed {b.fold_seed}); "
        f"{'two lanes (one process per core)' if b.jobs > 1 else 'one process'}")
    session = uuid.uuid4().hex[:12]
    if b.jobs > 1:
        _lanes(argv, cfg, runs, session, log, force=force, progress=progress)
    else:
        with torch_threads(b.threads):
            for lane in ("A", "B"):  # one process: lane A's models of every run, then lane B's (which evaluates)
                run_lane(cfg, lane, session, runs, force, log, progress)
    summary = write_summary(cfg, runs, log=log, command=command)
    log(f"[benchmark] finished in {(time.time() - t0) / 60:.1f} min: {cfg.paths.benchmark / 'report.md'}")
    return summary
