"""`graphrec benchmark`: the item k-fold benchmark, resumable, with progress and an ETA.

Run ``r`` (``benchmark/run<r>/``) is a run directory of its own: a k-fold split (fold ``r``
cold-test, fold ``r + 1`` cold-validation), the train stage (GraphRec, every baseline) and the
evaluate stage, exactly as the main command does on one split, sharing the parent run's
prepared tables and feature store. Every model has its own stamp, so a killed benchmark
continues at the next unfinished model of the next unfinished run. Run 0 tunes the baselines
on its validation (``benchmark.tune_first_run_only``); the other runs reuse those parameters
(each model still early-stops on its own run's validation) and are trained ``benchmark.jobs``
at a time in worker processes. Then :mod:`graphrec.benchmark.summary` writes ``summary.json``
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

from graphrec.config import Config
from graphrec.paths import RunPaths


def run_config(cfg: Config) -> Config:
    """The config a benchmark run trains with: the benchmark's seeds and oracle choice."""
    b = cfg.benchmark
    suite = cfg.suite.replace(seeds=list(b.seeds), oracle=b.oracle, ensemble=len(b.seeds) > 1)
    return cfg.replace(suite=suite)


def tuned_params(paths: RunPaths, names: Sequence[str]) -> dict[str, dict]:
    """The baseline parameters chosen on run 0's validation (``baselines/<name>/tuning.json``)."""
    run0 = paths.benchmark_run(0)
    out = {}
    for n in names:
        p = run0.baseline(n) / "tuning.json"
        if not p.exists():
            raise FileNotFoundError(f"{p}: run 0 has not tuned {n} yet")
        out[n] = json.loads(p.read_text())["params"]
    return out


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


def _eta(done: dict[int, float], remaining: int, jobs: int) -> str:
    if not done:
        return "ETA after the first run"
    per = sum(done.values()) / len(done)
    return f"ETA ~{per * -(-remaining // max(jobs, 1)) / 60:.0f} min ({remaining} runs left, ~{per / 60:.0f} min each)"


def _workers(argv: Sequence[str], runs: list[int], jobs: int, threads: int, root: Path, log) -> None:
    """Train ``runs`` in up to ``jobs`` child processes (``graphrec benchmark --only-run r``)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    todo, live, done = list(runs), {}, {}
    t_start = time.time()
    while todo or live:
        while todo and len(live) < jobs:
            r = todo.pop(0)
            logf = open(root / f"run{r}.log", "a")
            cmd = [sys.executable, "-m", "graphrec.cli", "benchmark", *argv, "--only-run", str(r), "--threads", str(threads)]
            live[r] = (subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env), time.time(), logf)
            log(f"[benchmark] run {r} started in a worker (log: {root / f'run{r}.log'})")
        time.sleep(5)
        for r, (proc, t0, logf) in list(live.items()):
            if proc.poll() is None:
                continue
            logf.close()
            del live[r]
            if proc.returncode != 0:
                raise RuntimeError(f"benchmark run {r} failed (exit {proc.returncode}); see {root / f'run{r}.log'}")
            done[r] = time.time() - t0
            log(f"[benchmark] run {r} done in {done[r] / 60:.1f} min; {_eta(done, len(todo) + len(live), jobs)}; "
                f"elapsed {(time.time() - t_start) / 60:.1f} min")


def run_benchmark(cfg: Config, argv: Sequence[str] = (), runs: Sequence[int] | None = None, force: bool = False,
                  log=print, progress: bool = False, command: str = "graphrec benchmark") -> dict:
    """The whole benchmark: data stages once, run 0, the other runs (parallel), then the summary.

    Args:
        argv: the command-line arguments (``--config``, ``--set``) handed to worker processes.
        runs: which runs (default ``range(benchmark.runs)``).
    """
    from graphrec.benchmark.summary import write_summary
    from graphrec.stages import stage_encode, stage_prepare
    from graphrec.training.seed import torch_threads

    b = cfg.benchmark
    runs = list(range(b.runs)) if runs is None else list(runs)
    t0 = time.time()
    stage_prepare(cfg, force, log)
    features = stage_encode(cfg, False, log, progress)
    cfg.paths.benchmark.mkdir(parents=True, exist_ok=True)
    log(f"[benchmark] {len(runs)} runs x {1 + len(cfg.baselines.names) if cfg.suite.baselines else 1} models, "
        f"{b.folds} item folds (seed {b.fold_seed}); {b.jobs} worker(s) after run 0")
    times: dict[int, float] = {}
    with torch_threads(b.threads):
        if 0 in runs:
            times[0] = run_one(cfg, 0, features, force, log, progress)["seconds"]
            log(f"[benchmark] run 0 done in {times[0] / 60:.1f} min")
    rest = [r for r in runs if r != 0]
    if rest and b.jobs > 1:
        _workers(list(argv), rest, b.jobs, 1, cfg.paths.benchmark, log)
    else:
        for r in rest:
            with torch_threads(b.threads):
                times[r] = run_one(cfg, r, features, force, log, progress)["seconds"]
            log(f"[benchmark] run {r} done; {_eta({k: v for k, v in times.items() if k}, len(runs) - len(times), 1)}")
    summary = write_summary(cfg, runs, log=log, command=command)
    log(f"[benchmark] finished in {(time.time() - t0) / 60:.1f} min: {cfg.paths.benchmark / 'report.md'}")
    return summary
