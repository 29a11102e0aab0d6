"""``encode_items``: encode an item table's modalities with the configured engine (local or Ray).

Both engines fill the same fingerprinted feature store (:mod:`graphrec.encoders.store`):
``local`` encodes in this process (:func:`graphrec.encoders.pipeline.encode_items_local`),
``ray`` on a pool of Ray Data actors (:func:`graphrec.encoders.ray_engine.encode_items_ray`,
which builds on the local pipeline). This module sits above both so that neither imports the other
in a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from graphrec.data.features import ItemFeatures
from graphrec.encoders.config import EncodersConfig
from graphrec.encoders.pipeline import encode_items_local


def encode_items(items: pd.DataFrame, cfg: EncodersConfig | None = None, cache_dir: str | Path = "features",
                 progress: bool = True, device: str | torch.device | None = None) -> tuple[dict[str, ItemFeatures], dict[str, Any]]:
    """Encode every enabled modality of ``items``, reusing the feature store in ``cache_dir``.

    ``cfg.engine`` picks where the rows the store lacks are encoded: ``local`` (this process) or
    ``ray`` (:func:`graphrec.encoders.ray_engine.encode_items_ray`); both write the same store.

    Args:
        items: item table (``item_id`` plus ``title, text, image_path, genres, ...``).
        cfg: encoder config (defaults: MiniLM text, EfficientNet-Lite0 images).
        cache_dir: feature store directory.
        progress: tqdm progress bars.
        device: where the encoders' networks run (None = CPU); features come back on the CPU.

    Returns:
        ``({"text": ItemFeatures, "image": ItemFeatures}, report)``; features are aligned to
        ``items`` row order; the report has per-modality counts of missing / unreadable /
        converted inputs, cache hits and seconds.
    """
    cfg = cfg or EncodersConfig()
    if cfg.engine == "ray":
        from graphrec.encoders.ray_engine import encode_items_ray

        return encode_items_ray(items, cfg, cache_dir, cfg.ray_workers, cfg.ray_address, progress, device=device)
    return encode_items_local(items, cfg, cache_dir, progress, device=device)
