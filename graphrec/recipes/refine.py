"""Warm refinement: a training step of its own that improves warm items without touching cold ones.

Stage 1 (:func:`graphrec.recipes.graphrec.train_graphrec`) early-stops on cold-validation NDCG,
which peaks before the warm items' collaborative embeddings are fully fitted. This step freezes
the whole model (users, content tower, propagation, kNN cold views) and fits only
``GraphRec.warm_residual`` (a per-warm-item correction added *after* propagation) and
``GraphRec.warm_user_residual`` (a per-user correction used only when a user scores warm items):
neither reaches a cold item's score, so cold-setting scores are exactly those selected in stage 1.
The residuals are fitted with a full softmax over the warm items on ``data.train`` by the generic
loop (:func:`graphrec.training.loop.fit`) and selected on warm-validation NDCG@20 (validation only).
This is the "ID embedding as an optional correction for warm items" of the design, fitted where it
cannot hurt cold-start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from graphrec.data.dataset import RecData
from graphrec.devices import module_device, module_to, resolve_device
from graphrec.paths import ModelPaths
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import TrainConfig
from graphrec.training.loop import EarlyStopping, MemoryCheckpointer, fit

KEY = "warm/ndcg@20"


class WarmResiduals(nn.Module):
    """The refinement task: residuals of warm items and of users, full softmax over warm items.

    Shapes:
        forward: batch of train-edge positions (B,) -> scalar loss
    """

    def __init__(self, users: torch.Tensor, collab: torch.Tensor, item_res: torch.Tensor, user_res: torch.Tensor,
                 edge_users: torch.Tensor, edge_items: torch.Tensor, temperature: float) -> None:
        super().__init__()
        self.users, self.collab = users, collab  # frozen (U, d), (S, d)
        self.item_res = nn.Parameter(item_res.clone())  # (S, d)
        self.user_res = nn.Parameter(user_res.clone())  # (U, d)
        self.edge_users, self.edge_items, self.temperature = edge_users, edge_items, temperature

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        items = nn.functional.normalize(self.collab + self.item_res, dim=-1)  # (S, d)
        bu = self.edge_users[idx]
        q = nn.functional.normalize(self.users[bu] + self.user_res[bu], dim=-1)  # (B, d)
        return nn.functional.cross_entropy(q @ items.T / self.temperature, self.edge_items[idx])


def refine_warm(model, data: RecData, cfg: TrainConfig, validator: Callable[[Any, Sequence[str]], dict[str, float]],
                progress: bool = False) -> list[dict]:
    """Fit the warm residuals of ``model`` (in place); keep the best epoch on warm validation.

    Args:
        model: a trained :class:`~graphrec.nn.GraphRec` (graph attached).
        data: the split (train edges for fitting, val_warm for selection).
        cfg: uses ``warm_refine_epochs``, ``warm_refine_lr``, ``warm_refine_patience``,
            ``batch_size``, ``rec_temperature`` and ``seed``.
        validator: ``(model, settings) -> {"warm/ndcg@20": ...}``.

    Returns:
        one history dict per refinement epoch, then a ``{"note": ...}`` summary.
    """
    model.eval()
    dev = module_device(model)  # the residuals are fitted where the model is
    with torch.no_grad():
        out = model.propagate()
        users = nn.functional.normalize(out["user"], dim=-1)  # (U, d) frozen
        collab = out["collab"][model.warm_index]  # (S, d) frozen
    pos_of = torch.full((model.num_items,), -1, dtype=torch.long)
    pos_of[model.warm_index.cpu()] = torch.arange(len(model.warm_index))
    u_all, i_all = data.train[0], pos_of[data.train[1]]
    keep = i_all >= 0
    task = WarmResiduals(users, collab, model.warm_residual.detach()[model.warm_index], model.warm_user_residual.detach(),
                         u_all[keep].to(dev), i_all[keep].to(dev), cfg.rec_temperature)
    opt = torch.optim.Adam(task.parameters(), lr=cfg.warm_refine_lr)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    E = task.edge_users.numel()

    def batches(epoch: int):
        perm = torch.randperm(E, generator=gen)
        return ((perm[b: b + cfg.batch_size],) for b in range(0, E, cfg.batch_size))

    def validate() -> dict[str, float]:
        model.set_warm_residuals(task.item_res.detach(), task.user_res.detach())
        return validator(model, ("warm",))

    start = validator(model, ("warm",)).get(KEY)
    if start is None:  # no warm-validation positives: nothing to select the residuals on
        return [{"note": "warm refinement skipped: no warm-validation positives to select on"}]
    stop = EarlyStopping(KEY, max(1, cfg.warm_refine_patience), best=start)
    keep_best = MemoryCheckpointer(lambda: (task.item_res.detach().clone(), task.user_res.detach().clone()))
    keep_best.value = keep_best.snapshot()
    state = fit(task, batches, opt, epochs=cfg.warm_refine_epochs, validate=validate, early_stopping=stop,
                checkpointer=keep_best, progress=progress, desc="warm refine", device=dev)
    model.set_warm_residuals(*keep_best.value)
    return state.history + [{"note": f"warm refinement: warm-val ndcg@20 {start:.4f} -> {stop.best:.4f}"}]


def refine_checkpoint(model_dir: str | Path, data: RecData, validator, progress: bool = False,
                      device: str | torch.device | None = None) -> bool:
    """Warm refinement of the checkpoint in ``model_dir`` (rewritten with ``warm_refined``).

    Uses the checkpoint's own train config; does nothing (returns False) when
    ``warm_refine_epochs`` is 0 or the checkpoint is already refined. ``device``: where the
    refinement computes (None = CPU).
    """
    paths = ModelPaths(Path(model_dir))
    model, st = load_checkpoint(paths.checkpoint, return_state=True)
    module_to(model, resolve_device(device))
    cfg = TrainConfig.from_dict(st["train_config"])
    if cfg.warm_refine_epochs <= 0 or st.get("warm_refined"):
        return False
    history = refine_warm(model, data, cfg, validator, progress)
    paths.refine.write_text(json.dumps(history, indent=1))
    save_checkpoint(paths.checkpoint, model, model.model_config, cfg, step=st["step"], epoch=st["epoch"],
                    best_metric=st["best_metric"], user_ids=st["user_ids"], item_ids=st["item_ids"],
                    fingerprints=st["fingerprints"], extra={"warm_refined": True})
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(history[-1]["note"])
    return True
