"""Calibration: the weights of GraphRec's content score terms and the cold/warm offset, chosen on validation.

After training (and warm refinement) the model's cold-item score is
``cos(u, cold view_i) + w_p * s * profile_u . x_i / s_p + w_b * s * prior_i + delta`` where
``s`` / ``s_p`` are the spreads of the cosine and of the content-walk scores over warm items
(so ``w_p`` and ``w_b`` are relative weights, comparable across data sets). The grid of
``(w_p, w_b)`` is searched on cold-validation ``train.val_metric`` and then ``delta`` (in units of
``s``) on hybrid validation, with the chosen weights: warm and cold items share one list there.
Only validation files are read; warm-item scores never change. A data set without cold or
hybrid validation positives keeps the weights at 0 (the plain GNN score), with a note.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from graphrec.paths import ModelPaths
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import TrainConfig

Validator = Callable[[Any, Sequence[str]], dict[str, float]]


@torch.no_grad()
def score_spreads(model, n_users: int = 512, seed: int = 0) -> tuple[float, float]:
    """Std of the GNN cosine and of the content-walk scores over (sampled users x warm items)."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randperm(model.num_users, generator=g)[:n_users]
    u, i = model.embeddings()
    warm = model.warm_index
    cos = (u[users] @ i[warm].T).std().item()
    prof = model.content_scores.profile_scores(users)[:, warm].std().item()
    return max(cos, 1e-6), max(prof, 1e-6)


def calibrate(model, cfg: TrainConfig, validator: Validator) -> dict[str, Any]:
    """Choose ``(w_p, w_b)`` on cold validation and ``delta`` on hybrid validation; set them on ``model``.

    Returns:
        the record: the spreads, every grid point with its validation value, the choice, notes.
    """
    model.eval()
    cs = model.content_scores
    s, s_p = score_spreads(model, seed=cfg.seed)
    metric = cfg.val_metric
    rec: dict[str, Any] = {"cos_spread": s, "profile_spread": s_p, "metric": metric, "grid": [], "offsets": []}

    def apply(wp: float, wb: float, d: float) -> None:
        cs.set_weights(wp * s / s_p, wb * s, d * s)

    apply(0.0, 0.0, 0.0)
    base = validator(model, ("cold",)).get(f"cold/{metric}")
    if base is None:
        rec["note"] = "no cold-validation positives: content terms left at 0"
        return rec
    best = (base, 0.0, 0.0)
    for wp, wb in itertools.product(cfg.calibrate_profile, cfg.calibrate_prior):
        apply(wp, wb, 0.0)
        v = validator(model, ("cold",))[f"cold/{metric}"]
        rec["grid"].append({"profile": wp, "prior": wb, "value": v})
        if v > best[0] + 1e-12:
            best = (v, wp, wb)
    _, wp, wb = best
    apply(wp, wb, 0.0)
    hyb = validator(model, ("hybrid",)).get(f"hybrid/{metric}")
    d_best = 0.0
    if hyb is not None and cfg.calibrate_offset:
        top = hyb
        for d in cfg.calibrate_offset:
            apply(wp, wb, d)
            v = validator(model, ("hybrid",))[f"hybrid/{metric}"]
            rec["offsets"].append({"offset": d, "value": v})
            if v > top + 1e-12:
                top, d_best = v, d
    elif hyb is None:
        rec["note"] = "no hybrid-validation positives: cold/warm offset left at 0"
    apply(wp, wb, d_best)
    rec.update({"chosen": {"profile": wp, "prior": wb, "offset": d_best},
                "weights": {"profile_weight": float(cs.profile_weight), "prior_weight": float(cs.prior_weight),
                            "cold_offset": float(cs.cold_offset)},
                "cold_val": {"gnn_only": base, "calibrated": best[0]}})
    return rec


def calibrate_checkpoint(model_dir: str | Path, data, validator: Validator, progress: bool = False) -> bool:
    """Calibrate the checkpoint in ``model_dir`` (rewritten with ``calibrated``; ``calibration.json``).

    Uses the checkpoint's own train config; does nothing when ``train.calibrate`` is off or the
    checkpoint is already calibrated. ``data`` is the split the model was trained on.
    """
    paths = ModelPaths(Path(model_dir))
    model, st = load_checkpoint(paths.checkpoint, return_state=True)
    cfg = TrainConfig.from_dict(st["train_config"])
    if not cfg.calibrate or st.get("calibrated"):
        return False
    rec = calibrate(model, cfg, validator)
    paths.calibration.write_text(json.dumps(rec, indent=1) + "\n")
    extra = {k: st[k] for k in ("warm_refined",) if k in st}
    save_checkpoint(paths.checkpoint, model, model.model_config, cfg, step=st["step"], epoch=st["epoch"],
                    best_metric=st["best_metric"], user_ids=st["user_ids"], item_ids=st["item_ids"],
                    fingerprints=st["fingerprints"], extra={**extra, "calibrated": True})
    if progress:
        c = rec.get("chosen", {})
        print(f"[calibrate] cold-val {cfg.val_metric} {rec.get('cold_val', {})}; chosen {c}")
    return True
