"""Warm refinement: a second training stage that improves warm items without touching cold ones.

Stage 1 (:func:`graphrec.training.trainer.train_graphrec`) early-stops on cold-validation NDCG,
which peaks before the warm items' collaborative embeddings are fully fitted. Stage 2 freezes the
whole model (users, content tower, propagation, kNN cold views) and fits only
``GraphRec.warm_residual`` (a per-warm-item correction added *after* propagation) and
``GraphRec.warm_user_residual`` (a per-user correction used only when a user scores warm items):
neither reaches a cold item's score, so cold-setting scores are exactly those selected in stage 1. The
residuals are fitted with a full softmax over the warm items on ``data.train`` and selected on
warm-validation NDCG@20 (validation only). This is the "ID embedding as an optional correction
for warm items" of the design, fitted where it cannot hurt cold-start.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from graphrec.data.dataset import RecData
from graphrec.training.config import TrainConfig


def refine_warm(model, data: RecData, cfg: TrainConfig, val_fn, progress: bool = False) -> list[dict]:
    """Fit ``model.warm_residual`` on train edges; keep the best epoch on warm validation.

    Args:
        model: a trained :class:`~graphrec.nn.GraphRec` (graph attached).
        data: the split (train edges for fitting, val_warm for selection).
        cfg: uses ``warm_refine_epochs``, ``warm_refine_lr``, ``warm_refine_patience``,
            ``batch_size``, ``rec_temperature`` and ``seed``.
        val_fn: ``(model, data) -> {"warm/ndcg@20": ...}``.

    Returns:
        one history dict per refinement epoch (``refine_epoch``, loss, warm validation).
    """
    from tqdm.auto import tqdm

    model.eval()
    with torch.no_grad():
        out = model.propagate()
        users = nn.functional.normalize(out["user"], dim=-1)  # (U, d) frozen
        collab = out["collab"][model.warm_index]  # (S, d) frozen
    pos_of = torch.full((model.num_items,), -1, dtype=torch.long)
    pos_of[model.warm_index] = torch.arange(len(model.warm_index))
    u_all, i_all = data.train[0], pos_of[data.train[1]]
    keep = i_all >= 0
    u_all, i_all = u_all[keep], i_all[keep]
    residual = model.warm_residual.detach()[model.warm_index].clone().requires_grad_(True)  # (S, d)
    user_res = model.warm_user_residual.detach().clone().requires_grad_(True)  # (U, d)
    opt = torch.optim.Adam([residual, user_res], lr=cfg.warm_refine_lr)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)

    def install(r: torch.Tensor, ru: torch.Tensor) -> None:
        with torch.no_grad():
            model.warm_residual[model.warm_index] = r
            model.warm_user_residual.copy_(ru)
        model._cache = None

    start = val_fn(model, data).get("warm/ndcg@20", float("-inf"))
    best, best_r, best_ru, bad, history = start, residual.detach().clone(), user_res.detach().clone(), 0, []
    E = u_all.numel()
    for epoch in range(cfg.warm_refine_epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(E, generator=gen)
        total, steps = 0.0, 0
        for b in tqdm(range(0, E, cfg.batch_size), desc=f"warm refine {epoch}", disable=not progress, leave=False):
            idx = perm[b : b + cfg.batch_size]
            items = nn.functional.normalize(collab + residual, dim=-1)  # (S, d)
            bu = u_all[idx]
            q = nn.functional.normalize(users[bu] + user_res[bu], dim=-1)  # (B, d)
            logits = q @ items.T / cfg.rec_temperature  # (B, S)
            loss = nn.functional.cross_entropy(logits, i_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        install(residual.detach(), user_res.detach())
        metrics = val_fn(model, data)
        score = metrics.get("warm/ndcg@20", float("-inf"))
        history.append({"refine_epoch": epoch, "refine_loss": total / max(steps, 1),
                        "seconds": time.perf_counter() - t0, **{f"val/{k}": v for k, v in metrics.items()}})
        if score > best:
            best, best_r, best_ru, bad = score, residual.detach().clone(), user_res.detach().clone(), 0
        else:
            bad += 1
            if bad >= max(1, cfg.warm_refine_patience):
                break
    install(best_r, best_ru)
    history.append({"note": f"warm refinement: warm-val ndcg@20 {start:.4f} -> {best:.4f}"})
    return history
