"""Canonical tables, strict input checks, item cold-start splits and the index-space RecData."""

from __future__ import annotations

from pathlib import Path

from graphrec.data.dataset import RecData
from graphrec.data.features import ItemFeatures
from graphrec.data.report import DataError, PrepReport
from graphrec.data.split import Split, cold_start_split, load_split, write_split
from graphrec.data.tables import load_prepared

__all__ = ["DataError", "ItemFeatures", "PrepReport", "RecData", "Split", "cold_start_split",
           "load_prepared", "load_recdata", "load_split", "write_split"]


def load_recdata(prepared_dir: str | Path, split_dir: str | Path,
                 features: dict[str, ItemFeatures] | None = None) -> RecData:
    """Load prepared items + a split directory (+ optional features) into a :class:`RecData`."""
    _, items = load_prepared(prepared_dir)
    split = load_split(split_dir)
    return RecData.from_frames(split.frames(), items, features, split_dir=split_dir)
