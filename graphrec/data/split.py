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


def _canonical_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    return interactions[["user_id", "item_id"]].astype(str).drop_duplicates().reset_index(drop=True)


def _sorted_items(df: pd.DataFrame) -> np.ndarray:
    items = df["item_id"].unique()
    return items[_sort_key(items)]


def cold_start_split(interactions: pd.DataFrame, cfg: SplitConfig = SplitConfig()) -> Split:
    """Split canonical interactions (``user_id,item_id``) for item cold-start. See module docstring."""
    df = _canonical_pairs(interactions)
    rng = np.random.default_rng(cfg.seed)
    items = _sorted_items(df)
    n_cold = int(round(cfg.cold_item_frac * len(items)))
    perm = rng.permutation(len(items))
    cold = items[perm[:n_cold]]
    n_cold_val = int(round(cfg.cold_val_share * n_cold))
    return split_with_cold_items(interactions, set(cold[:n_cold_val]), set(cold[n_cold_val:]), cfg, rng)


def item_folds(interactions: pd.DataFrame, k: int, seed: int) -> dict[str, int]:
    """Partition the items that have interactions into ``k`` popularity-stratified folds.

    Items are ordered by interaction count (descending; ties in a seeded random order); each
    consecutive block of ``k`` items is dealt to the ``k`` folds in a seeded random order, so
    every fold gets one item of each popularity block and folds have a similar mix of head
    and tail items. Deterministic for a seed and independent of the input row order.

    Returns:
        ``{item_id: fold}`` with folds ``0..k-1`` (sizes differ by at most one).
    """
    if k < 2:
        raise ValueError(f"item_folds: need k >= 2 folds, got {k}")
    df = _canonical_pairs(interactions)
    items = _sorted_items(df)
    if len(items) < k:
        raise DataError(Path("<interactions>"), f"only {len(items)} items have interactions; "
                        f"{k} item folds need at least {k}")
    counts = df["item_id"].value_counts().reindex(items).to_numpy()
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(items))
    order = np.lexsort((tie, -counts))  # most popular first, seeded tie order
    fold = np.empty(len(items), dtype=int)
    for start in range(0, len(items), k):
        block = order[start:start + k]
        fold[block] = rng.permutation(k)[: len(block)]
    return dict(zip(items.tolist(), fold.tolist()))


def kfold_split(interactions: pd.DataFrame, folds: dict[str, int], run: int, k: int,
                cfg: SplitConfig = SplitConfig()) -> Split:
    """Run ``run`` of the item k-fold protocol: fold ``run`` is cold-test, fold ``(run + 1) % k``
    cold-validation, every other item warm (its interactions split per user as in
    :func:`cold_start_split`, seeded with ``cfg.seed + run``).

    With ``k`` runs every item with interactions is cold-test exactly once, and never warm in
    the run where it is cold (the leakage rules of the module docstring hold in every run).
    """
    if not 0 <= run < k:
        raise ValueError(f"kfold_split: run {run} is not in 0..{k - 1}")
    test = {i for i, f in folds.items() if f == run}
    val = {i for i, f in folds.items() if f == (run + 1) % k}
    split = split_with_cold_items(interactions, val, test, cfg, np.random.default_rng(cfg.seed + run))
    split.info["kfold"] = {"folds": k, "run": run, "cold_test_fold": run, "cold_val_fold": (run + 1) % k}
    return split


def split_with_cold_items(interactions: pd.DataFrame, cold_val: set[str], cold_test: set[str],
                          cfg: SplitConfig, rng: np.random.Generator) -> Split:
    """The split given its cold-validation and cold-test item sets: all interactions of a cold
    item go to its cold file; warm interactions are split per user 80/10/10 with ``rng``."""
    df = _canonical_pairs(interactions)
    items = _sorted_items(df)
    n_cold = len(cold_val) + len(cold_test)
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


def check_split(split: Split, cfg: SplitConfig, val_setting: str, source: Path) -> None:
    """A :class:`DataError` when ``split`` leaves a later stage nothing to work on (naming the keys).

    Training needs at least two warm items with training interactions, the early-stopping
    setting ``val_setting`` needs validation positives, and a split asked for cold items
    (``cold_item_frac > 0``) must have some in cold-validation and cold-test.
    """
    c = split.info["counts"]
    n = c["items_with_interactions"]
    fracs = f"split.cold_item_frac={cfg.cold_item_frac}, split.cold_val_share={cfg.cold_val_share}"
    train_items = split.train["item_id"].nunique()
    if train_items < 2 or c["train_interactions"] < 2:
        raise DataError(source, f"the split leaves {train_items} warm item(s) with {c['train_interactions']} training "
                        f"interaction(s) ({fracs} of {n} items with interactions; {c['users']} users); training needs "
                        "at least 2 warm items: lower split.cold_item_frac or give more data")
    if cfg.cold_item_frac > 0 and not split.info.get("kfold"):
        for what, k in (("cold-validation", "cold_val_items"), ("cold-test", "cold_test_items")):
            if c[k] == 0:
                raise DataError(source, f"the split has no {what} items ({fracs} of {n} items with interactions "
                                f"round to {c['cold_val_items']} cold-validation and {c['cold_test_items']} cold-test "
                                "items): raise split.cold_item_frac, or set it to 0 for no cold items")
    need = {"cold": ("val_cold", "cold-validation"), "cold_full": ("val_cold", "cold-validation"),
            "warm": ("val_warm", "warm-validation")}.get(val_setting)
    if val_setting == "hybrid" and len(split.val_warm) + len(split.val_cold) == 0:
        need = ("val_warm", "validation")
    if need and c[f"{need[0]}_interactions"] == 0:
        raise DataError(source, f"the split has no {need[1]} interactions, but train.val_setting={val_setting!r} "
                        f"early-stops on them ({fracs}, split.warm_val_frac={cfg.warm_val_frac}; {n} items with "
                        f"interactions, {c['users']} users)")


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
    try:
        info = json.loads((d / "split.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(d / "split.json", f"not valid JSON ({exc}); rerun `graphrec split --force`") from None
    return Split(**frames, info=info)
