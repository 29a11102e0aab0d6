"""Launching GraphRec training on several processes with torchrun (``graphrec train --nproc N``).

The train stage stays one process; only GraphRec's stage-1 training (the part with many
gradient steps) is handed to ``N`` workers:

1. :func:`launch_train_graphrec` writes the split, the configs and the validation settings to
   ``<model dir>/ddp_spec.pt`` and runs
   ``python -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node N -m graphrec.stages.ddp <spec>``
   (torchrun picks a free port on this machine, sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``,
   and stops every worker when one fails);
2. each worker (:func:`main`) joins the process group (:func:`graphrec.training.distributed.init_from_env`:
   Gloo on CPU, NCCL with one GPU per process) and calls
   :func:`graphrec.recipes.graphrec.train_graphrec` with its :class:`DistContext`: batches
   sharded, gradients all-reduced, rank 0 validating and writing ``checkpoint.pt``, ``last.pt``,
   ``history.json``, TensorBoard and ``ddp.json``;
3. back in the stage, warm refinement, the stamp and everything else run as usual.

The same workers can be started by hand (e.g. on a GPU machine):
``torchrun --standalone --nproc-per-node 4 -m graphrec.stages.ddp <spec>``, with a spec written by
:func:`write_spec`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from graphrec.paths import ModelPaths
SPEC_FILE = "ddp_spec.pt"


def write_spec(path: str | Path, data, model_cfg, train_cfg, out_dir: str | Path, *, device: str = "auto",
               val_ks: Sequence[int] = (20,), eval_batch_size: int = 1024, resume: bool = False,
               progress: bool = False, rank_state_dir: str | Path | None = None, timeout_s: float = 1800.0) -> Path:
    """Everything a worker needs, in one file (the split with its features, configs, validation settings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"data": data, "model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "out_dir": str(out_dir),
                "device": str(device), "val_ks": [int(k) for k in val_ks], "eval_batch_size": int(eval_batch_size),
                "resume": bool(resume), "progress": bool(progress), "timeout_s": float(timeout_s),
                "rank_state_dir": str(rank_state_dir) if rank_state_dir is not None else None}, path)
    return path


def torchrun_command(nproc: int, spec: str | Path) -> list[str]:
    """The launcher command line: torchrun (as a module of this interpreter) on a free local port."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(int(nproc)), "-m", "graphrec.stages.ddp", str(spec)]


def launch_train_graphrec(data, model_cfg, train_cfg, out_dir: str | Path, nproc: int, *, device: str = "auto",
                          val_ks: Sequence[int] = (20,), eval_batch_size: int = 1024, resume: bool = False,
                          progress: bool = True, timeout_s: float | None = None,
                          rank_state_dir: str | Path | None = None) -> list[dict]:
    """Train GraphRec on ``nproc`` local processes; returns the history rank 0 wrote.

    Args:
        data, model_cfg, train_cfg, out_dir, resume, progress: as for
            :func:`graphrec.recipes.graphrec.train_graphrec`.
        nproc: processes (>= 2; with GPUs at most the number of GPUs).
        device: the run's device option (``auto``/``cpu``/``cuda``...; with CUDA each process
            takes ``cuda:LOCAL_RANK``).
        val_ks, eval_batch_size: the validator rank 0 builds (:func:`graphrec.evaluation.protocol.make_validator`).
        timeout_s: wall-clock limit of the whole launch; on expiry torchrun and its workers are
            stopped (their process group) and TimeoutError is raised. None = no limit.
        rank_state_dir: keep each rank's final parameters there (tests, debugging).

    Raises:
        RuntimeError: when the workers fail (their output is above, on stderr).
    """
    if nproc < 2:
        raise ValueError(f"nproc must be >= 2 for a distributed launch, got {nproc}")
    out = Path(out_dir)
    spec = write_spec(out / SPEC_FILE, data, model_cfg, train_cfg, out, device=device, val_ks=val_ks,
                      eval_batch_size=eval_batch_size, resume=resume, progress=progress, rank_state_dir=rank_state_dir)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the graphrec checkout this code runs from
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default for several workers, without its warning
    proc = subprocess.Popen(torchrun_command(nproc, spec), env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise TimeoutError(f"distributed training did not finish within {timeout_s:g}s; its processes were stopped") from None
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        spec.unlink(missing_ok=True)
    if rc != 0:
        raise RuntimeError(f"distributed training on {nproc} processes failed (torchrun exit code {rc}); "
                           "the workers' errors are printed above")
    return json.loads(ModelPaths(out).history.read_text())


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the launcher and the workers it started (one process group, started by us)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Worker entry point (run by torchrun): ``python -m graphrec.stages.ddp <spec file>``."""
    from graphrec.evaluation.protocol import make_validator
    from graphrec.nn import ModelConfig
    from graphrec.recipes.graphrec import train_graphrec
    from graphrec.training.config import TrainConfig
    from graphrec.training.distributed import init_from_env

    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) != 1:
        print("usage: torchrun --nproc-per-node N -m graphrec.stages.ddp <spec file written by write_spec>", file=sys.stderr)
        return 2
    spec: dict[str, Any] = torch.load(argv[0], map_location="cpu", weights_only=False)
    dist = init_from_env(spec["device"], spec["timeout_s"], spec["rank_state_dir"])
    try:
        data = spec["data"]
        validator = make_validator(data, ks=spec["val_ks"], batch_size=spec["eval_batch_size"]) if dist.is_main else None
        train_graphrec(data, ModelConfig.from_dict(spec["model"]), TrainConfig.from_dict(spec["train"]), spec["out_dir"],
                       validator, progress=spec["progress"] and dist.is_main, resume=spec["resume"],
                       device=dist.device, dist=dist)
    finally:
        dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
