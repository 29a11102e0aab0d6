"""Training GraphRec's collaborative backbone (:class:`graphrec.nn.backbone.CFBackbone`).

An ID-only LightGCN on the train interactions, in its efficient form, trained by the generic
loop with BPR until early stopping on warm validation (``train.backbone_*``), exactly as the
LightGCN baseline trains (:func:`graphrec.baselines.lightgcn.fit_lightgcn`). Its vectors are
installed into the model, which keeps every other parameter as trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from graphrec.paths import ModelPaths
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import TrainConfig

Validator = Callable[[Any, Sequence[str]], dict[str, float]]


def train_backbone(model, data, cfg: TrainConfig, validator: Validator, progress: bool = False,
                   cache=None) -> dict[str, Any]:
    """Fit the backbone of ``model`` on ``data.train``; returns its training history.

    ``cache``: a :class:`~graphrec.baselines.shared_fit.FitCache`; the backbone is the LightGCN
    baseline's fit of the same parameters and seed, so when the run's baseline tuning fitted (or is
    fitting) it, that fit is used instead of a second identical one (``history["shared_fit"]``).
    """
    from graphrec.baselines.lightgcn import fit_lightgcn

    params = {"dim": model.backbone.dim, "layers": cfg.backbone_layers, "lr": cfg.backbone_lr, "reg": cfg.backbone_reg,
              "batch_size": cfg.backbone_batch_size, "epochs": cfg.backbone_epochs, "eval_every": cfg.backbone_eval_every,
              "patience": cfg.backbone_patience}
    def fit():
        return fit_lightgcn(data, params, cfg.seed, validator, progress)

    sc, how = cache.get_or_fit("lightgcn", params, cfg.seed, data, fit) if cache is not None else (fit(), None)
    model.backbone.set_embeddings(sc.user_emb, sc.item_emb)
    model._eval_cache = None
    return {"params": params, **sc.history, **({"shared_fit": how} if how else {})}


def backbone_checkpoint(model_dir: str | Path, data, validator: Validator, progress: bool = False, cache=None) -> bool:
    """Train and install the backbone of the checkpoint in ``model_dir`` (``backbone.json``); no-op when
    the model has none or it is already trained. ``cache``: as in :func:`train_backbone`."""
    paths = ModelPaths(Path(model_dir))
    model, st = load_checkpoint(paths.checkpoint, return_state=True)
    if model.backbone.dim == 0 or model.backbone.ready:
        return False
    if data.val_warm.shape[1] == 0:  # nothing to early-stop on: the model keeps scoring warm items with the GNN
        paths.root.joinpath("backbone.json").write_text(json.dumps({"note": "no warm-validation positives: no backbone"}) + "\n")
        return False
    cfg = TrainConfig.from_dict(st["train_config"])
    hist = train_backbone(model, data, cfg, validator, progress, cache)
    paths.root.joinpath("backbone.json").write_text(json.dumps(hist, indent=1, default=float) + "\n")
    extra = {k: st[k] for k in ("warm_refined", "calibrated") if k in st}
    save_checkpoint(paths.checkpoint, model, model.model_config, cfg, step=st["step"], epoch=st["epoch"],
                    best_metric=st["best_metric"], user_ids=st["user_ids"], item_ids=st["item_ids"],
                    fingerprints=st["fingerprints"], extra=extra)
    if progress:
        print(f"[backbone] {hist['epochs_run']} epochs (best {hist['best_epoch']}), warm-val ndcg@20 {hist['best_val']:.4f}")
    return True
