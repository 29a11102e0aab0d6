"""Top-K files: ``topk/<model>_<setting>.csv`` with columns ``user_id,item_id,rank`` (original ids).

These files are the evaluation's public output: metrics can be recomputed from them and the
split files alone (:mod:`graphrec.evaluation.recompute`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.data.dataset import RecData
from graphrec.paths import topk_name


def write_topk(path: Path, data: RecData, users: torch.Tensor, topk: torch.Tensor) -> Path:
    """Write ranked lists as CSV ``user_id,item_id,rank`` with original ids, rank from 1.

    Padding entries (``-1``) are not written. The file is written atomically.

    Shapes:
        users: (n,); topk: (n, K).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = topk.numpy()
    valid = top >= 0
    u_idx = np.broadcast_to(users.numpy()[:, None], top.shape)[valid]
    ranks = np.broadcast_to(np.arange(1, top.shape[1] + 1)[None, :], top.shape)[valid]
    uid = np.asarray(data.user_ids, dtype=object)
    iid = np.asarray(data.item_ids, dtype=object)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pd.DataFrame({"user_id": uid[u_idx], "item_id": iid[top[valid]], "rank": ranks}).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def write_topk_files(result, data: RecData, topk_dir: Path, model_name: str) -> list[Path]:
    """Every setting of an :class:`~graphrec.evaluation.protocol.EvalResult` to ``<model>_<setting>.csv``."""
    return [write_topk(Path(topk_dir) / topk_name(model_name, s), data, users, top)
            for s, (users, top) in result.topk.items()]
