"""The one training loop of graphrec: GraphRec, warm refinement and every neural baseline.

``fit(task, batches, optimizer, ...)`` knows nothing about models. A *task* is a callable
module that turns one batch into either a scalar loss or a dict of named ``*_loss`` terms with
their weighted sum under ``"loss"`` (open_clip's task habit); *batches* yields the batches of
one epoch; *validate* returns named validation metrics; an :class:`EarlyStopping` watches one
of them; a *checkpointer* is told when a new best is reached and when an epoch ends. Resuming
passes the :class:`FitState` of an interrupted fit back in.

Per epoch: ``task.train()``, one optimizer step per batch, then (every ``eval_every`` epochs and
after the last one) validation, the early-stopping update, ``on_validation`` (e.g. dynamic loss
weighting) and the checkpointer. The loop stops when the epoch cap is reached or patience runs
out. Random numbers are drawn only by ``batches`` and the task, so a seeded caller gets the
same run every time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import torch

from graphrec.devices import to_device


@dataclass
class EarlyStopping:
    """Keeps the best value of one validation metric and counts validations without progress.

    Args:
        metric: key of the validation dict that is watched (e.g. ``"cold/ndcg@20"``).
        patience: validations without improvement before stopping (0 acts as 1).
        best: starting best value (e.g. the metric before a refinement stage); None = none yet.
    """

    metric: str
    patience: int = 3
    best: float | None = None
    best_epoch: int = -1
    bad: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record a validation value; True when it is a new best."""
        if self.best is None or value > self.best:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad >= max(self.patience, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "patience": self.patience, "best": self.best,
                "best_epoch": self.best_epoch, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad = state["best"], state["best_epoch"], state["bad"]


@dataclass
class FitState:
    """Where a fit stands: next epoch, optimizer steps so far, one record per epoch run."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopping: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return sum(1 for h in self.history if "epoch" in h)


class Checkpointer(Protocol):
    """Told when validation reaches a new best and when an epoch ends (both optional to act on)."""

    def best(self, state: FitState) -> None: ...

    def epoch_end(self, state: FitState) -> None: ...


class Logger(Protocol):
    """Scalar sink, e.g. TensorBoard's ``SummaryWriter.add_scalar``."""

    def add_scalar(self, tag: str, value: float, step: int) -> None: ...


def _terms(out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return {"loss": out}
    if "loss" not in out:
        raise KeyError(f"task returned terms {sorted(out)} without their total 'loss'")
    return out


def fit(
    task: torch.nn.Module | Callable[..., Any],
    batches: Callable[[int], Iterable[tuple]],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    validate: Callable[[], dict[str, float]] | None = None,
    early_stopping: EarlyStopping | None = None,
    eval_every: int = 1,
    checkpointer: Checkpointer | None = None,
    logger: Logger | None = None,
    on_validation: Callable[[dict[str, float], dict[str, Any]], dict[str, Any] | None] | None = None,
    epoch_stats: Callable[[], dict[str, Any]] | None = None,
    grad_clip: float = 0.0,
    state: FitState | None = None,
    progress: bool = False,
    desc: str = "train",
    log_epochs: Callable[[str], None] | None = None,
    device: torch.device | None = None,
    dist: Any = None,
    precision: str = "fp32",
) -> FitState:
    """Train ``task`` for up to ``epochs`` epochs with validation and early stopping.

    Args:
        task: ``task(*batch)`` -> scalar loss or ``{"loss": total, "<name>_loss": term, ...}``.
        batches: ``batches(epoch)`` -> iterable of batch tuples for that epoch.
        optimizer: steps the task's parameters.
        epochs: epoch cap.
        validate: ``() -> {"<setting>/<metric>": value}``; called every ``eval_every`` epochs
            and after the last epoch.
        early_stopping: watches ``validate``'s ``early_stopping.metric``.
        checkpointer: ``best(state)`` on a new best, ``epoch_end(state)`` after every epoch.
        logger: receives ``train/<term>`` per step and ``val/<metric>`` per validation.
        on_validation: ``(metrics, record) -> extra record fields`` after each validation.
        epoch_stats: ``() -> extra record fields`` at the end of every epoch.
        grad_clip: clip the gradient norm to this value (0 = off).
        state: a :class:`FitState` to resume from (its ``epoch`` is the next one to run).
        progress: tqdm bar over each epoch's batches.
        desc: progress-bar label.
        log_epochs: called with a one-line summary of each epoch (e.g. ``tqdm.write``).
        device: move every batch's tensors there before ``task(*batch)`` (None = leave them).
        dist: a :class:`graphrec.training.distributed.DistContext` in data-parallel training:
            gradients are all-reduced after each backward, the epoch's mean loss terms are
            averaged over the ranks. The caller gives each rank its shard of every batch and the
            checkpointer / logger / validation to rank 0 alone (see :mod:`graphrec.training.distributed`).
        precision: ``"fp32"``, or ``"bf16"``: each ``task(*batch)`` runs under ``torch.autocast`` to
            bfloat16 (the backward and the optimizer step stay outside it, parameters float32).

    Returns:
        the final :class:`FitState` (``history`` holds one record per epoch run: ``epoch``,
        ``step``, ``seconds``, mean of each loss term, ``val/<metric>`` when validated).
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"fit: precision must be 'fp32' or 'bf16', got {precision!r}")
    state = state or FitState()
    if early_stopping is not None and state.stopping is not None:
        early_stopping.load_state_dict(state.stopping)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for epoch in range(state.epoch, epochs):
        if early_stopping is not None and early_stopping.should_stop:
            break
        if isinstance(task, torch.nn.Module):
            task.train()
        t0 = time.perf_counter()
        sums, n = _train_epoch(task, batches(epoch), optimizer, params, state, grad_clip, logger, device, dist,
                               progress, f"{desc} {epoch}", precision)
        if dist is not None:
            sums = dist.mean_of(sums)
        rec: dict[str, Any] = {"epoch": epoch, "step": state.step, "seconds": time.perf_counter() - t0}
        rec.update({k: v / max(n, 1) for k, v in sums.items()})
        if epoch_stats is not None:
            rec.update(epoch_stats())
        improved = False
        if validate is not None and ((epoch + 1) % eval_every == 0 or epoch == epochs - 1):
            improved = _validate(validate, early_stopping, on_validation, logger, rec, state.step, epoch)
        state.history.append(rec)
        state.epoch = epoch + 1
        state.stopping = early_stopping.state_dict() if early_stopping is not None else None
        state.seconds += time.perf_counter() - t0
        if checkpointer is not None:
            if improved:
                checkpointer.best(state)
            checkpointer.epoch_end(state)
        if log_epochs is not None:
            shown = {k: round(v, 4) for k, v in rec.items() if isinstance(v, float) and (k.endswith("loss") or k.startswith("val/"))}
            log_epochs(f"{desc} epoch {epoch} ({rec['seconds']:.1f}s) {shown}")
    return state


def _autocast(precision: str, device: torch.device | None):
    """The forward pass's autocast context for ``precision`` (a no-op for fp32)."""
    return torch.autocast(device_type=(device.type if device is not None else "cpu"), dtype=torch.bfloat16,
                          enabled=precision == "bf16")


def _train_epoch(task, batches: Iterable[tuple], optimizer, params, state: FitState, grad_clip: float, logger, device,
                 dist, progress: bool, desc: str, precision: str = "fp32") -> tuple[dict[str, float], int]:
    """One pass over ``batches``: an optimizer step per batch; returns the summed loss terms and the step count."""
    from tqdm.auto import tqdm

    sums: dict[str, float] = {}
    n = 0
    bar = tqdm(batches, desc=desc, disable=not progress, leave=False)
    for batch in bar:
        if device is not None:
            batch = to_device(batch, device)
        with _autocast(precision, device):
            terms = _terms(task(*batch))
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if dist is not None:
            dist.all_reduce_grads(params)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        state.step += 1
        n += 1
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        if logger is not None:
            for k, v in terms.items():
                logger.add_scalar(f"train/{k}", float(v.detach()), state.step)
        if progress:
            bar.set_postfix(loss=f"{float(terms['loss'].detach()):.4f}")
    return sums, n


def _validate(validate, early_stopping: EarlyStopping | None, on_validation, logger, rec: dict[str, Any], step: int,
              epoch: int) -> bool:
    """Validation after an epoch: record the metrics, update early stopping; True on a new best."""
    metrics = validate()
    rec.update({f"val/{k}": v for k, v in metrics.items()})
    improved = False
    if early_stopping is not None:
        if early_stopping.metric not in metrics:
            raise ValueError(f"validation returned no {early_stopping.metric!r} (got {sorted(metrics)})")
        value = float(metrics[early_stopping.metric])
        if not math.isfinite(value):
            raise ValueError(f"validation {early_stopping.metric!r} is {value} at epoch {epoch}")
        improved = early_stopping.update(value, epoch)
    if on_validation is not None:
        rec.update(on_validation(metrics, rec) or {})
    if logger is not None:
        for k, v in metrics.items():
            logger.add_scalar(f"val/{k}", v, step)
    return improved


class MemoryCheckpointer:
    """Keeps the best snapshot in memory: ``snapshot()`` is called on every new best.

    Used by the baselines, whose "checkpoint" is a frozen scorer written once at the end.
    """

    def __init__(self, snapshot: Callable[[], Any]) -> None:
        self.snapshot = snapshot
        self.value: Any = None

    def best(self, state: FitState) -> None:
        self.value = self.snapshot()

    def epoch_end(self, state: FitState) -> None:
        pass
