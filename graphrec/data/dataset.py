"""Index-space view of a cold-start split: the one object models, baselines and evaluation share.

:class:`RecData` maps original string ids to contiguous indices and holds every split as a
``(2, E)`` LongTensor of ``[user_index, item_index]`` pairs. Items are the whole catalogue
(``items.csv``): warm items, cold items and items without any interaction all have an index,
so a model can score any of them from content.

Leakage rules (see :mod:`graphrec.data.split`): only :attr:`RecData.train` may be used for
training, message passing, negative sampling or any statistic fitted on data (popularity,
feature normalisation); validation sets are for model selection; test sets are read once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from graphrec.data.edges import csr
from graphrec.data.features import ItemFeatures
from graphrec.data.report import DataError

SPLIT_NAMES = ("train", "val_warm", "test_warm", "val_cold", "test_cold")


@dataclass
class RecData:
    """Users, items, split edges and item features, all in index space.

    Attributes:
        user_ids / item_ids: original ids; position = index.
        train, val_warm, test_warm, val_cold, test_cold: ``(2, E)`` long tensors
            (row 0 user index, row 1 item index).
        warm_items: indices of warm items (items with interactions that are not cold).
        cold_val_items / cold_test_items: indices of the cold-validation / cold-test items.
        features: modality name -> :class:`ItemFeatures` aligned to ``item_ids``.
        items: the canonical items table (indexed like ``item_ids``), for titles/genres.
        train_timestamps: ``(E_train,)`` float64 time of each train pair, or None when the
            interactions carry no timestamps (ml1m-mm); enables the sequence user view.
    """

    user_ids: list[str]
    item_ids: list[str]
    train: torch.Tensor
    val_warm: torch.Tensor
    test_warm: torch.Tensor
    val_cold: torch.Tensor
    test_cold: torch.Tensor
    warm_items: torch.Tensor
    cold_val_items: torch.Tensor
    cold_test_items: torch.Tensor
    features: dict[str, ItemFeatures] = field(default_factory=dict)
    items: pd.DataFrame | None = None
    train_timestamps: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {v: i for i, v in enumerate(self.item_ids)}

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def edges(self, name: str) -> torch.Tensor:
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLIT_NAMES}")
        return getattr(self, name)

    def item_mask(self, items: torch.Tensor) -> torch.Tensor:
        """Boolean (num_items,) mask of the given item indices."""
        m = torch.zeros(self.num_items, dtype=torch.bool)
        m[items] = True
        return m

    def csr(self, name: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """Per-user item lists of a split as CSR: ``(indptr (U+1,), items (E,))`` sorted by user."""
        return csr(self.edges(name), self.num_users, self.num_items)

    def feature_matrix(self, names: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenate features of the given modalities (default: all, sorted by name).

        Returns ``(x (N, sum D), mask (N, M))``.
        """
        names = sorted(self.features) if names is None else names
        if not names:
            raise ValueError("no item features are loaded")
        xs = [self.features[n].x for n in names]
        ms = [self.features[n].mask for n in names]
        return torch.cat(xs, 1), torch.stack(ms, 1)

    @classmethod
    def from_frames(
        cls,
        splits: dict[str, pd.DataFrame],
        items: pd.DataFrame,
        features: dict[str, ItemFeatures] | None = None,
        split_dir: str | Path | None = None,
    ) -> "RecData":
        """Build from split DataFrames (columns ``user_id,item_id``, string ids) and the items table.

        Users are every user that appears in any split, sorted; items are every row of
        ``items`` in file order. A split pair naming an item absent from ``items`` is a
        :class:`~graphrec.data.report.DataError` naming ``split_dir``'s file and row.
        """
        where = Path(split_dir) if split_dir is not None else Path("<split>")
        missing = [n for n in SPLIT_NAMES if n not in splits]
        if missing:
            raise ValueError(f"missing split tables: {missing}")
        item_ids = [str(i) for i in items["item_id"].tolist()]
        item_index = {v: i for i, v in enumerate(item_ids)}
        users = sorted(set().union(*[set(splits[n]["user_id"].astype(str)) for n in SPLIT_NAMES]), key=_natural)
        user_index = {u: i for i, u in enumerate(users)}

        def to_edges(name: str) -> torch.Tensor:
            df = splits[name]
            if not len(df):
                return torch.zeros(2, 0, dtype=torch.long)
            it = df["item_id"].astype(str)
            bad = ~it.isin(item_index)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise DataError(where / f"{name}.csv", f"item {it.iloc[row]!r} is not in the prepared items table "
                                "(rerun `graphrec split`)", row=row + 2, field="item_id")
            u = torch.tensor(df["user_id"].astype(str).map(user_index).to_numpy(), dtype=torch.long)
            i = torch.tensor(it.map(item_index).to_numpy(), dtype=torch.long)
            return torch.stack([u, i])

        edges = {n: to_edges(n) for n in SPLIT_NAMES}
        train_ts = None
        if "timestamp" in splits["train"].columns and len(splits["train"]):
            ts = pd.to_numeric(splits["train"]["timestamp"], errors="coerce")
            if ts.isna().any():
                row = int(ts.isna().to_numpy().nonzero()[0][0])
                raise DataError(where / "train.csv", f"timestamp {splits['train']['timestamp'].iloc[row]!r} is not a number",
                                row=row + 2, field="timestamp")
            train_ts = torch.tensor(ts.to_numpy(dtype="float64"))
        cold_val = torch.unique(edges["val_cold"][1])
        cold_test = torch.unique(edges["test_cold"][1])
        warm = torch.unique(torch.cat([edges["train"][1], edges["val_warm"][1], edges["test_warm"][1]]))
        feats = {k: v.align(item_ids) for k, v in (features or {}).items()}
        return cls(users, item_ids, **edges, warm_items=warm, cold_val_items=cold_val,
                   cold_test_items=cold_test, features=feats, items=items.reset_index(drop=True),
                   train_timestamps=train_ts)


def _natural(s: str):
    return (0, int(s), "") if s.isdigit() else (1, 0, s)
