"""Item cold-start split (the protocol of ALDI / GAR).

With a seed, ``cold_item_frac`` (20%) of the items *that have interactions* become cold; the
cold items are split ``cold_val_share`` (50/50) into cold-validation and cold-test items, and
**all** interactions of a cold item go to its cold set. The warm items' interactions are split
per user 80/10/10 into train / warm-validation / warm-test (per user: a seeded shuffle, then
``round(0.1 n)`` to validation and ``round(0.1 n)`` to test; users with few interactions keep at
least one in train).

Leakage rules (enforced by construction and checked by tests):

* A cold item's interactions never reach ``train.csv``; hence never training, message passing,
  negative sampling, nor any statistic fitted on training data (popularity, feature
  normalisation, kNN item neighbourhoods built from interactions). Only ``train.csv`` may be
  used for those.
* Cold-validation and cold-test item sets are disjoint from each other and from every item in
  ``train.csv``, ``val_warm.csv`` and ``test_warm.csv``.
* Validation files are for model selection only; test files are read once, at the end.

Items with no interaction at all are neither warm nor cold: they stay in the catalogue (and are
ranked in the ``cold_full`` setting) but have no positives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.data.config import SplitConfig
from graphrec.data.report import DataError
from graphrec.data.tables import read_table

SPLIT_FILES = ("train", "val_warm", "test_warm", "val_cold", "test_cold")


@dataclass
class Split:
    """The five split tables (columns ``user_id,item_id``, string ids, plus ``timestamp`` when the
    interactions have one) and ``info`` (split.json)."""

    train: pd.DataFrame
    val_warm: pd.DataFrame
    test_warm: pd.DataFrame
    val_cold: pd.DataFrame
    test_cold: pd.DataFrame
    info: dict

    def frames(self) -> dict[str, pd.DataFrame]:
        return {n: getattr(self, n) for n in SPLIT_FILES}


def _sort_key(ids: np.ndarray) -> np.ndarray:
    # Natural order (numeric ids numerically) so the split does not depend on input row order.
    s = pd.Series(ids, dtype=str)
    num = pd.to_numeric(s, errors="coerce")
    return np.lexsort((s.to_numpy(), num.fillna(np.inf).to_numpy()))


def cold_start_split(interactions: pd.DataFrame, cfg: SplitConfig = SplitConfig()) -> Split:
    """Split canonical interactions (``user_id,item_id``) for item cold-start. See module docstring."""
    df = interactions[["user_id", "item_id"]].astype(str).drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(cfg.seed)
    items = df["item_id"].unique()
    items = items[_sort_key(items)]
    n_cold = int(round(cfg.cold_item_frac * len(items)))
    perm = rng.permutation(len(items))
    cold = items[perm[:n_cold]]
    n_cold_val = int(round(cfg.cold_val_share * n_cold))
    cold_val, cold_test = set(cold[:n_cold_val]), set(cold[n_cold_val:])

    is_cv = df["item_id"].isin(cold_val).to_numpy()
    is_ct = df["item_id"].isin(cold_test).to_numpy()
    warm = df[~(is_cv | is_ct)].copy()
    # Canonical row order, then a seeded random key per row: per-user shuffle independent of input order.
    warm = warm.iloc[np.lexsort((warm["item_id"].to_numpy(), warm["user_id"].to_numpy()))].reset_index(drop=True)
    warm["_key"] = rng.random(len(warm))
    warm = warm.sort_values(["user_id", "_key"], kind="mergesort")
    pos = warm.groupby("user_id").cumcount().to_numpy()
    n = warm.groupby("user_id")["item_id"].transform("size").to_numpy()
    n_val = np.floor(cfg.warm_val_frac * n + 0.5).astype(int)
    n_test = np.floor(cfg.warm_test_frac * n + 0.5).astype(int)
    # keep at least one training interaction per user
    over = n_val + n_test >= n
    n_test = np.where(over, np.maximum(0, np.minimum(n_test, n - 1)), n_test)
    n_val = np.where(over, np.maximum(0, np.minimum(n_val, n - 1 - n_test)), n_val)
    n_train = n - n_val - n_test
    part = np.where(pos < n_train, 0, np.where(pos < n_train + n_val, 1, 2))
    warm = warm.drop(columns="_key")

    def sort(x: pd.DataFrame) -> pd.DataFrame:
        return x.iloc[np.lexsort((x["item_id"].to_numpy(), x["user_id"].to_numpy()))].reset_index(drop=True)

    tables = {
        "train": sort(warm[part == 0]), "val_warm": sort(warm[part == 1]), "test_warm": sort(warm[part == 2]),
        "val_cold": sort(df[is_cv]), "test_cold": sort(df[is_ct]),
    }
    if "timestamp" in interactions.columns:
        tables = _attach_timestamps(tables, interactions)
    train_items = set(tables["train"]["item_id"])
    info = {
        "seed": cfg.seed,
        "fractions": {"cold_item_frac": cfg.cold_item_frac, "cold_val_share": cfg.cold_val_share,
                      "warm_val_frac": cfg.warm_val_frac, "warm_test_frac": cfg.warm_test_frac},
        "counts": {
            **{f"{k}_interactions": len(v) for k, v in tables.items()},
            "items_with_interactions": len(items),
            "cold_val_items": len(cold_val), "cold_test_items": len(cold_test),
            "warm_items": len(items) - n_cold,
            "warm_items_without_train_interactions": len(set(warm["item_id"]) - train_items),
            "users": int(df["user_id"].nunique()),
            "users_in_train": int(tables["train"]["user_id"].nunique()),
        },
    }
    return Split(**tables, info=info)


def _attach_timestamps(tables: dict[str, pd.DataFrame], interactions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Add each pair's ``timestamp`` (first occurrence) to every split table, keeping row order.

    The split itself never looks at time (it is an item cold-start split); timestamps only
    travel with the pairs so that models can build ordered user histories from ``train``.
    """
    ts = interactions[["user_id", "item_id", "timestamp"]].astype({"user_id": str, "item_id": str})
    ts = ts.drop_duplicates(["user_id", "item_id"], keep="first")
    return {k: v.merge(ts, on=["user_id", "item_id"], how="left", validate="one_to_one") for k, v in tables.items()}


def write_split(split: Split, out_dir: str | Path) -> Path:
    """Write the five CSVs and ``split.json``; each file is written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in split.frames().items():
        tmp = out / f"{name}.csv.tmp"
        cols = ["user_id", "item_id"] + (["timestamp"] if "timestamp" in frame.columns else [])
        frame[cols].to_csv(tmp, index=False)
        tmp.replace(out / f"{name}.csv")
    tmp = out / "split.json.tmp"
    tmp.write_text(json.dumps(split.info, indent=2) + "\n")
    tmp.replace(out / "split.json")
    return out


def load_split(split_dir: str | Path) -> Split:
    """Read a split directory written by :func:`write_split`."""
    d = Path(split_dir)
    if not (d / "split.json").exists():
        raise DataError(d / "split.json", "split not found; run `graphrec split` first")
    frames = {n: read_table(d / f"{n}.csv", ["user_id", "item_id"]) for n in SPLIT_FILES}
    return Split(**frames, info=json.loads((d / "split.json").read_text()))
