"""Two-core parallelism of the benchmark: two worker processes ("lanes") that split each run's models.

Lane A trains the teacher chain of every run (the warm-only baselines, then the baselines that
start from the best of them); lane B trains GraphRec and every other baseline. Within a lane the
runs go in order, so run 0 (which tunes) always precedes the runs that reuse its parameters. Lane A
writes every run's split before it trains anything, and lane B waits only for those splits. Lane A
claims its share of each run as it starts it; lane B, once its own share of every run is done, takes
lane A's share of the last unclaimed runs, so neither core idles while whole runs remain. Whichever
lane completes a run evaluates it (claimed with an exclusive lock file). Markers carry the benchmark
session id, so markers of an earlier, interrupted session are never mistaken for this one's; every
step is also skipped when its stamp is up to date, so a rerun resumes where the previous session
stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

from graphrec.config import Config
from graphrec.paths import RunPaths

LANES = ("A", "B")


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


def _marker(run_root: Path, what: str) -> Path:
    return run_root / f".{what}.session"


def _mark(run_root: Path, what: str, session: str) -> None:
    run_root.mkdir(parents=True, exist_ok=True)
    _marker(run_root, what).write_text(session)


def _marked(run_root: Path, what: str, session: str) -> bool:
    p = _marker(run_root, what)
    return p.exists() and p.read_text() == session


def _claim(run_root: Path, what: str, session: str) -> bool:
    """Exclusive claim of a one-time step (atomic create); True for the one caller that gets it."""
    p = _marker(run_root, f"claim-{what}")
    if p.exists() and p.read_text() != session:
        p.unlink(missing_ok=True)  # left by an earlier session
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(session)
    return True


def _train_run(cfg: Config, rcfg: Config, features, r: int, chain: str, models: Sequence[str], session: str,
               force: bool, log, progress: bool, who: str) -> None:
    """Train ``models`` (lane ``chain``'s share) of run ``r``, mark them, and evaluate the run if it is now complete."""
    from graphrec.stages import stage_evaluate, stage_train

    b = cfg.benchmark
    paths = cfg.paths.benchmark_run(r)
    t0 = time.time()
    fixed = None
    if r > 0 and b.tune_first_run_only and rcfg.suite.baselines:
        fixed = tuned_params(cfg.paths, [m.split(":", 1)[1] for m in models if m.startswith("baseline:")])
    stage_train(rcfg, features, force, log, progress, paths=paths, fixed_params=fixed, only=lambda m: m in models)
    _mark(paths.root, f"lane{chain}", session)
    log(f"[benchmark] lane {who}: run {r} models of lane {chain} done in {(time.time() - t0) / 60:.1f} min")
    if all(_marked(paths.root, f"lane{x}", session) for x in LANES) and _claim(paths.root, "evaluate", session):
        stage_evaluate(rcfg, features, force, log, progress, paths=paths)
        _mark(paths.root, "evaluated", session)
        (paths.root / "run.json").write_text(json.dumps({"run": r, "evaluated_by_lane": who}, indent=1) + "\n")
        log(f"[benchmark] run {r} evaluated (lane {who})")


def run_lane(cfg: Config, lane: str, session: str, runs: list[int], force: bool = False, log=print,
             progress: bool = False, poll: float = 5.0) -> None:
    """Train this lane's models of every run (in order) and evaluate the runs it finishes last.

    Lane A's share of a run (the teacher chain) is claimed run by run; lane B, once its own share of
    every run is trained, takes lane A's share of the last runs lane A has not claimed yet (after run 0,
    whose tuning the others reuse), so neither core idles while the other still has whole runs to do.
    """
    from graphrec.stages import stage_encode, stage_split
    from graphrec.stages.train import lane_models

    b = cfg.benchmark
    rcfg = run_config(cfg)
    features = stage_encode(cfg, False, log, progress)
    shares = lane_models(cfg)
    if lane == "A":  # every run's split first (seconds each), so lane B never waits on lane A's training
        for r in runs:
            paths = cfg.paths.benchmark_run(r)
            stage_split(rcfg, force, log, paths=paths, kfold=(r, b.folds, b.fold_seed))
            _mark(paths.root, "split", session)
    for r in runs:
        root = cfg.paths.benchmark_run(r).root
        while not _marked(root, "split", session):
            time.sleep(poll)
        if lane == "A" and not _claim(root, "chainA", session):
            continue  # lane B took this run's teacher chain
        _train_run(cfg, rcfg, features, r, lane, shares[lane], session, force, log, progress, lane)
    if lane != "B" or not shares["A"]:
        return
    first = cfg.paths.benchmark_run(runs[0]).root
    while not _marked(first, "laneA", session):
        time.sleep(poll)  # run 0's tuning first (the other runs reuse its parameters)
    for r in reversed(runs[1:]):
        if _claim(cfg.paths.benchmark_run(r).root, "chainA", session):
            _train_run(cfg, rcfg, features, r, "A", shares["A"], session, force, log, progress, lane)
        else:
            return  # lane A is on this run already; the runs before it are its own


def evaluated(cfg: Config, run: int, session: str) -> bool:
    return _marked(cfg.paths.benchmark_run(run).root, "evaluated", session)
