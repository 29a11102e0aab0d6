"""Baseline "checkpoints": a fitted scorer's tensors, written by the train stage, read by evaluation.

A stored scorer is ``{"format", "class", "state", "history", "meta"}`` with only tensors,
numbers, strings, lists and dicts inside, so it loads with ``torch.load(weights_only=True)``
(no pickled code). Every scorer class of the baselines implements ``state()`` and
``from_state(state)``; :data:`SCORERS` names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from graphrec.baselines.common import EmbeddingScorer, SplitScorer
from graphrec.baselines.item_knn import ItemKNNScorer
from graphrec.baselines.simple import PopularityScorer, RandomScorer
from graphrec.data.report import DataError

FORMAT = 1
SCORERS: dict[str, type] = {c.__name__: c for c in (EmbeddingScorer, SplitScorer, PopularityScorer, RandomScorer,
                                                    ItemKNNScorer)}


def register_scorer(cls: type) -> type:
    """Class decorator: make a scorer class storable (it needs ``state`` and ``from_state``)."""
    SCORERS[cls.__name__] = cls
    return cls


def _plain(x: Any) -> Any:
    """History values as JSON-like plain data (tuples to lists, numpy/torch scalars to floats)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, torch.Tensor):
        return x.item()
    return x


def save_scorer(path: str | Path, scorer: Any, meta: dict[str, Any] | None = None) -> Path:
    """Write ``scorer`` (atomically: temp file, then rename)."""
    name = type(scorer).__name__
    if name not in SCORERS:
        raise TypeError(f"save_scorer: {name} is not a registered scorer class ({sorted(SCORERS)})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "class": name, "state": scorer.state(),
            "history": _plain(getattr(scorer, "history", {})), "meta": _plain(meta or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_scorer(path: str | Path) -> Any:
    """Rebuild a stored scorer (with its ``history`` and ``meta`` attributes)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "stored scorer not found; run `graphrec train` first")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated / corrupt / not a torch file
        raise DataError(path, f"not a readable graphrec scorer file ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("class") not in SCORERS:
        raise DataError(path, f"not a graphrec scorer file of format {FORMAT}")
    scorer = SCORERS[blob["class"]].from_state(blob["state"])
    scorer.history, scorer.meta = blob.get("history", {}), blob.get("meta", {})
    return scorer
