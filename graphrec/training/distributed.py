"""Data-parallel training across processes (PyTorch distributed, launched by torchrun).

How a GraphRec step is shared among ``W`` processes (ranks):

* **Same batches everywhere, one shard each.** Every rank seeds the same generator, so every
  rank draws the same permutation of the train edges and the same shared negatives; rank ``r``
  then keeps its contiguous slice of each batch's rows (:meth:`DistContext.shard`), so the union
  of the shards is exactly the single-process batch. The full-graph propagation (item tower +
  LightGCN over every node) is computed by every rank: only the per-batch loss work is split.
* **Gradients all-reduced by hand** (:meth:`DistContext.all_reduce_grads`, one flat buffer per
  dtype after each backward): rank ``r``'s gradient is weighted by its share ``n_r / B`` of the
  batch rows and summed, which is the full-batch gradient for every loss term that is a mean over
  batch rows. A parameter keeps ``grad = None`` only when no rank used it (as a single process
  would). Manual all-reduce instead of ``DistributedDataParallel``: the task's forward touches a
  different subset of parameters per step (ID dropout, optional heads), which DDP handles only
  with ``find_unused_parameters`` and its bucket bookkeeping; one explicit reduction has no such
  failure mode and no hooks.
* **Rank 0 writes, everyone stops together.** Checkpoints, TensorBoard, history and notes are
  written by rank 0 only; validation runs on rank 0 and its metrics are broadcast
  (:meth:`DistContext.main_only`), so the early-stopping decision (and the dynamic loss weights)
  are the same on every rank and all ranks stop at the same epoch. After training the ranks'
  parameters are compared (:meth:`DistContext.max_parameter_gap`; any difference is an error).

Not bit-identical to a single process: float sums run in another order, and the random draws
inside the task (ID dropout, contrastive subsampling) come from each rank's own global RNG.
Quality matches within seed noise (tests/test_distributed.py).

Backends: Gloo on CPU, NCCL on GPUs (one GPU per process: ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.distributed as tdist

from graphrec.devices import resolve_device

#: torchrun's environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class DistContext:
    """Where this process stands in a data-parallel run; a single process is ``DistContext()``.

    Every collective method is a no-op when ``world_size == 1``, so training code calls them
    unconditionally.

    Attributes:
        rank: this process's global rank (0 = the one that writes).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: where this rank computes.
        backend: ``"gloo"`` / ``"nccl"``, or None for a single process.
        rank_state_dir: when set, :meth:`save_rank_state` writes each rank's final parameters
            there (``rank<r>.pt``; for tests and debugging).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    rank_state_dir: Path | None = None
    _weight: float = 1.0  # this rank's share of the current batch's rows (set by shard)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------------ batches
    def shard(self, n: int) -> slice:
        """This rank's rows of a batch of ``n`` rows: contiguous, sizes differ by at most one.

        Also records the rank's share ``n_r / n`` for :meth:`all_reduce_grads`. A rank whose
        slice would be empty (``n < world_size``) computes on row 0 with weight 0, so every rank
        still takes part in every collective.
        """
        if not self.enabled:
            self._weight = 1.0
            return slice(None)
        start, end = self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size
        if end > start:
            self._weight = (end - start) / n
            return slice(start, end)
        self._weight = 0.0
        return slice(0, 1)

    # ------------------------------------------------------------------ collectives
    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by ``sum_r w_r * grad_r`` over the ranks (``w_r`` from :meth:`shard`).

        One flat buffer per (dtype, device) plus one "used" flag per parameter; a parameter
        no rank produced a gradient for keeps ``grad = None``.
        """
        if not self.enabled:
            return
        groups: dict[tuple, list[torch.nn.Parameter]] = {}
        for p in params:
            if p.requires_grad:
                groups.setdefault((p.dtype, p.device), []).append(p)
        for (dtype, dev), ps in groups.items():
            parts = [(p.grad.reshape(-1) * self._weight) if p.grad is not None else p.new_zeros(p.numel()) for p in ps]
            flags = torch.tensor([float(p.grad is not None) for p in ps], dtype=dtype, device=dev)
            flat = torch.cat(parts + [flags])
            tdist.all_reduce(flat)
            used = flat[-len(ps):]
            offset = 0
            for p, u in zip(ps, used.tolist()):
                g = flat[offset: offset + p.numel()].view_as(p)
                offset += p.numel()
                if u == 0:
                    p.grad = None
                elif p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)

    def mean_of(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` averaged over the ranks (same keys on every rank; e.g. an epoch's loss sums)."""
        if not self.enabled or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm_device)
        tdist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` (picklable) on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=src, device=self._comm_device if self.backend == "nccl" else None)
        return box[0]

    def main_only(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` run on rank 0 alone, its result broadcast to every rank.

        An exception on rank 0 is re-raised there and reported on the other ranks as a
        RuntimeError (instead of leaving them waiting).
        """
        if not self.enabled:
            return fn

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out: Any = None
            error: BaseException | None = None
            if self.is_main:
                try:
                    out = ("ok", fn(*args, **kwargs))
                except Exception as exc:  # noqa: BLE001 - re-raised below, after telling the others
                    error, out = exc, ("error", f"{type(exc).__name__}: {exc}")
            status, value = self.broadcast_object(out)
            if error is not None:
                raise error
            if status == "error":
                raise RuntimeError(f"rank 0 failed while the other ranks waited for its result: {value}")
            return value

        return wrapped

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters to every rank (they start equal under one seed; this makes it certain)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for p in module.parameters():
                tdist.broadcast(p.data, src=0)

    def max_parameter_gap(self, module: torch.nn.Module) -> float:
        """Largest ``|p_rank - p_rank0|`` over every parameter and rank (0.0 = identical everywhere)."""
        if not self.enabled:
            return 0.0
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
            ref = flat.clone()
            tdist.broadcast(ref, src=0)
            gap = (flat - ref).abs().max() if flat.numel() else flat.new_zeros(())
            gap = gap.reshape(1).to(self._comm_device)
            tdist.all_reduce(gap, op=tdist.ReduceOp.MAX)
        return float(gap)

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier(device_ids=[self.device.index] if self.backend == "nccl" else None)

    def save_rank_state(self, module: torch.nn.Module, **extra: Any) -> None:
        """Write this rank's parameters to ``rank_state_dir/rank<r>.pt`` (when that is set)."""
        if self.rank_state_dir is None:
            return
        d = Path(self.rank_state_dir)
        d.mkdir(parents=True, exist_ok=True)
        torch.save({"rank": self.rank, "world_size": self.world_size, **extra,
                    "params": {k: v.detach().cpu() for k, v in module.named_parameters()}}, d / f"rank{self.rank}.pt")

    def close(self) -> None:
        """Leave the process group (if this context's run created one)."""
        if self.enabled and tdist.is_initialized():
            tdist.destroy_process_group()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


def init_from_env(device: str | torch.device | None = "auto", timeout_s: float = 1800.0,
                  rank_state_dir: str | Path | None = None) -> DistContext:
    """The :class:`DistContext` of this process, joining torchrun's process group when there is one.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (set by ``torchrun`` /
    ``python -m torch.distributed.run``) and initialises the default group with ``env://``
    (``MASTER_ADDR`` / ``MASTER_PORT``). ``device`` is the run's device option: when it resolves
    to CUDA, each process takes ``cuda:LOCAL_RANK`` and NCCL; otherwise the CPU and Gloo. Without
    torchrun's variables (or ``WORLD_SIZE=1``) it returns a single-process context on ``device``.

    Raises:
        ValueError: naming ``device`` when more processes per machine than GPUs are asked for.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    rsd = Path(rank_state_dir) if rank_state_dir is not None else None
    if world <= 1:
        return DistContext(device=dev, rank_state_dir=rsd)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if local >= n:
            raise ValueError(f"device: local rank {local} needs GPU {local} but this machine has {n}; "
                             f"start at most {n} processes per machine (or use device: cpu)")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not tdist.is_initialized():
        kwargs: dict[str, Any] = {"device_id": dev} if backend == "nccl" else {}
        tdist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout_s), **kwargs)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend, rank_state_dir=rsd)


def finish_ranks(dist: DistContext, module: torch.nn.Module, out_dir: str | Path, state: Any) -> dict[str, Any]:
    """After a data-parallel fit: check that every rank holds rank 0's parameters, record it.

    Rank 0 writes ``out_dir/ddp.json`` (world size, backend, device, epochs and steps run, the
    largest parameter gap between ranks); each rank's parameters go to ``rank_state_dir`` when
    that is set.

    Raises:
        RuntimeError: on every rank when any parameter differs between ranks.
    """
    import json

    gap = dist.max_parameter_gap(module)
    dist.save_rank_state(module, epoch=state.epoch, step=state.step)
    info = {"world_size": dist.world_size, "backend": dist.backend, "device": str(dist.device),
            "epochs_run": state.epoch, "steps": state.step, "max_parameter_gap": gap,
            "batch_rows": "each batch split across ranks (contiguous shards); gradients weighted by shard size and summed"}
    if dist.is_main:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "ddp.json").write_text(json.dumps(info, indent=1) + "\n")
    if gap != 0.0:
        raise RuntimeError(f"data-parallel ranks ended with different parameters (max gap {gap:g}); "
                           "the gradient all-reduce did not keep them in step")
    return info
