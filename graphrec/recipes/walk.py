"""Fit the learned content walk of a trained GraphRec (:class:`graphrec.nn.content_walk.LearnedWalk`).

Runs inside the calibration, after the text share of the content terms is chosen and before the
walk's weight is searched: the one training loop (:func:`graphrec.training.loop.fit`) over
:class:`~graphrec.nn.content_walk.WalkTask`, selected on cold validation (``train.val_metric``;
the start, the plain content walk, competes) when the split has cold-validation positives, else
trained for ``train.walk_epochs``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from graphrec.training.config import TrainConfig
from graphrec.training.loop import EarlyStopping, MemoryCheckpointer, fit

Validator = Callable[[Any, Sequence[str]], dict[str, float]]


class _WalkScorer:
    """The walk term alone as a scorer (for validation)."""

    supports_cold = True

    def __init__(self, walk) -> None:
        self.walk = walk

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.walk.scores(users)


def fit_walk(model, cfg: TrainConfig, validator: Validator | None, progress: bool = False) -> dict | None:
    """Train ``model.walk``; the record (None when the model has none or it is already fitted)."""
    walk = model.walk
    if walk is None or bool(walk.fitted):
        return None
    task = walk.task(model.warm, model.train_edges, cfg.walk_keep)
    metric = f"cold/{cfg.val_metric}"
    walk.install(task.state())  # the start: the plain content walk
    start = validator(_WalkScorer(walk), ("cold",)).get(metric) if validator is not None else None
    opt = torch.optim.Adam(task.parameters(), lr=cfg.walk_lr)
    gen = torch.Generator(device=task.xw.device).manual_seed(cfg.seed + 104729)
    n_users, n_warm = task.interactions.shape

    def batches(epoch: int):
        for users in torch.randperm(n_users, generator=gen, device=gen.device).split(cfg.walk_batch_size):
            yield users, torch.rand(len(users), n_warm, generator=gen, device=gen.device)

    def validate() -> dict[str, float]:
        walk.install(task.state())
        return validator(_WalkScorer(walk), ("cold",))

    keep_best = MemoryCheckpointer(task.state)
    keep_best.value = task.state()
    selected = start is not None
    stop = EarlyStopping(metric, cfg.walk_patience, best=start) if selected else None
    state = fit(task, batches, opt, epochs=cfg.walk_epochs, validate=validate if selected else None, early_stopping=stop,
                eval_every=cfg.walk_eval_every, checkpointer=keep_best if selected else None, progress=progress,
                desc="learned walk")
    walk.install(keep_best.value if selected else task.state())
    model._eval_cache = None
    return {"start": start, "history": state.history, "selected": selected,
            "selected_on": metric if selected else f"none (no cold-validation positives): {cfg.walk_epochs} epochs",
            "best": stop.best if selected else None, "best_epoch": stop.best_epoch if selected else None}
