"""Two-core parallelism of the benchmark: two worker processes ("lanes") that split each run's models.

Lane A trains the teacher chain of every run (the warm-only baselines, then the baselines that
start from the best of them); lane B trains GraphRec and every other baseline. Within a lane the
runs go in order, so run 0 (which tunes) always precedes the runs that reuse its parameters, and
no model waits on the other lane: lane A writes every run's split before it trains anything, and
lane B waits only for those splits. Whichever lane finishes a run second evaluates it (claimed with an exclusive lock
file). Markers carry the benchmark session id, so markers of an earlier, interrupted session
are never mistaken for this one's; every step is also skipped when its stamp is up to date, so
a rerun resumes where the previous session stopped.
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


def run_lane(cfg: Config, lane: str, session: str, runs: list[int], force: bool = False, log=print,
             progress: bool = False, poll: float = 5.0) -> None:
    """Train this lane's models of every run (in order) and evaluate the runs it finishes last."""
    from graphrec.stages import stage_encode, stage_evaluate, stage_split, stage_train
    from graphrec.stages.train import lane_models

    b = cfg.benchmark
    rcfg = run_config(cfg)
    features = stage_encode(cfg, False, log, progress)
    mine = lane_models(cfg)[lane]
    other = [x for x in LANES if x != lane][0]
    if lane == "A":  # every run's split first (seconds each), so lane B never waits on lane A's training
        for r in runs:
            paths = cfg.paths.benchmark_run(r)
            stage_split(rcfg, force, log, paths=paths, kfold=(r, b.folds, b.fold_seed))
            _mark(paths.root, "split", session)
    for r in runs:
        paths = cfg.paths.benchmark_run(r)
        t0 = time.time()
        while not _marked(paths.root, "split", session):
            time.sleep(poll)
        fixed = None
        if r > 0 and b.tune_first_run_only and rcfg.suite.baselines:
            fixed = tuned_params(cfg.paths, [m.split(":", 1)[1] for m in mine if m.startswith("baseline:")])
        stage_train(rcfg, features, force, log, progress, paths=paths, fixed_params=fixed, only=lambda m: m in mine)
        _mark(paths.root, f"lane{lane}", session)
        log(f"[benchmark] lane {lane}: run {r} models done in {(time.time() - t0) / 60:.1f} min")
        if _marked(paths.root, f"lane{other}", session) and _claim(paths.root, "evaluate", session):
            stage_evaluate(rcfg, features, force, log, progress, paths=paths)
            _mark(paths.root, "evaluated", session)
            (paths.root / "run.json").write_text(json.dumps({"run": r, "evaluated_by_lane": lane}, indent=1) + "\n")
            log(f"[benchmark] run {r} evaluated (lane {lane})")


def evaluated(cfg: Config, run: int, session: str) -> bool:
    return _marked(cfg.paths.benchmark_run(run).root, "evaluated", session)
