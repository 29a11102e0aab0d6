"""Checkpoints that carry everything needed to rebuild a trained model.

A checkpoint holds: model and train configs, user/item id maps, encoder fingerprints, the
graph inputs (train edges, item features) the model was attached to, model weights, step,
epoch, best validation metric and the graphrec version (nanoGPT / peft habit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from graphrec.data.report import DataError
from graphrec.nn import GraphRec, ModelConfig, build_model
from graphrec.training.config import TrainConfig

CHECKPOINT_FORMAT = 1


def graphrec_version() -> str:
    try:
        from importlib.metadata import version

        return version("graphrec")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0+local"


def save_checkpoint(path: Path, model: GraphRec, model_cfg: ModelConfig, train_cfg: TrainConfig, *, user_ids: list[str],
                    item_ids: list[str], fingerprints: dict[str, str], step: int, epoch: int, best_metric: float | None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a self-contained checkpoint (atomically: temp file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "graphrec_version": graphrec_version(),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "num_users": model.num_users,
        "num_items": model.num_items,
        "modality_dims": model.modality_dims,
        "user_ids": list(user_ids),
        "item_ids": list(item_ids),
        "fingerprints": dict(fingerprints),
        "graph": {"train_edges": model.train_edges, "features": model.features},
        "model": model.state_dict(),
        "step": step,
        "epoch": epoch,
        "best_metric": best_metric,
        **(extra or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


RETRAIN = "retrain it with `graphrec train --force`"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw state of a checkpoint file; a :class:`~graphrec.data.report.DataError` naming the
    file when it is missing, empty, truncated, corrupt or of another format."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found; run `graphrec train` first")
    if path.stat().st_size == 0:
        raise DataError(path, f"checkpoint is empty (0 bytes); {RETRAIN}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - truncated zip, unpickling error, EOF, not a torch file
        raise DataError(path, f"not a readable checkpoint (truncated or corrupt: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); {RETRAIN}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(path, f"not a graphrec checkpoint of format {CHECKPOINT_FORMAT} (got {got!r}); {RETRAIN}")
    return state


def load_checkpoint(path: str | Path, return_state: bool = False):
    """Rebuild a trained :class:`GraphRec` (eval mode, graph attached) from a checkpoint.

    The model gets ``user_ids``, ``item_ids``, ``fingerprints``, ``model_config`` and
    ``checkpoint_info`` (step, epoch, best metric, version) attributes for serving.

    Returns:
        the model, or ``(model, raw_state)`` when ``return_state``.
    """
    path = Path(path)
    state = read_checkpoint(path)
    try:
        mc = dict(state["model_config"])
        mc.setdefault("reduce_dim", 0)  # written before the PCA option existed: projectors read the raw features
        mc.setdefault("backbone_dim", 0)  # ... and before the collaborative backbone
        mc.setdefault("learned_walk", False)  # ... and before the learned content walk
        mc.setdefault("walk_codes", False)  # ... and before its item codes
        cfg = ModelConfig.from_dict(mc)
        model = build_model(cfg, state["num_users"], state["num_items"], state["modality_dims"])
        res = model.load_state_dict(state["model"], strict=False)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DataError(path, f"checkpoint does not rebuild a model ({type(exc).__name__}: {exc}); {RETRAIN}") from None
    # absent from checkpoints written before warm refinement / the content score terms existed
    optional = {"warm_residual", "warm_user_residual", "content_scores.profile_weight", "content_scores.prior_weight",
                "content_scores.cold_offset", "backbone.user", "backbone.item", "backbone.trained",
                "backbone.warm_gnn_weight", "backbone.transfer_weight"}
    if res.unexpected_keys or set(res.missing_keys) - optional:
        raise DataError(path, f"checkpoint does not match the model: missing {sorted(set(res.missing_keys) - optional)}, "
                        f"unexpected {sorted(res.unexpected_keys)}; {RETRAIN}")
    model.set_graph(state["graph"]["train_edges"], state["graph"]["features"])
    model.eval()
    model.user_ids, model.item_ids = state["user_ids"], state["item_ids"]
    model.fingerprints = state["fingerprints"]
    model.model_config = cfg
    model.checkpoint_info = {k: state[k] for k in ("step", "epoch", "best_metric", "graphrec_version")}
    model.checkpoint_info["warm_refined"] = bool(state.get("warm_refined", False))
    model.checkpoint_info["calibrated"] = bool(state.get("calibrated", False))
    return (model, state) if return_state else model
