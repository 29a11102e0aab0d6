"""New items (``graphrec add-items``, the service's ``POST /items``) prepared exactly as catalogue rows.

A new-items table names its columns as the run's raw items file does, or by their prepared names
(``item_id``, ``title``, ``genres``, ``image_path``, template fields); each ``data_prep`` format maps
them (``new_item_aliases``) and runs its own item preparation on them, so a new item's prepared
row, text and embedding equal those of the same row prepared as part of the catalogue. What the
catalogue counts and skips (an item with neither text nor image, an image file that is not there)
is an error for a new item, naming its row and field, and then nothing is added.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graphrec.data.report import DataError, PrepReport
from graphrec.data.tables import TableSpec


def raw_view(table: pd.DataFrame, aliases: dict[str, str], raw_cols: list[str], path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """``table`` with its columns renamed to the raw columns ``raw_cols`` (absent ones empty).

    Returns:
        ``(raw table, {raw column: the name the table used})``; row ``r`` of the file is
        ``raw.iloc[r - 2]`` (the index is kept).

    Raises:
        DataError: an unknown column, two columns for one field, no id column, no content column.
    """
    accepted = sorted(aliases, key=lambda a: (a not in raw_cols, a))
    unknown = [c for c in table.columns if c not in aliases]
    if unknown:
        raise DataError(path, f"unknown column {unknown[0]!r}; a new item of this run may carry {accepted} "
                        "(README: Template fields)", field=unknown[0])
    used: dict[str, str] = {}
    for c in table.columns:
        raw = aliases[c]
        if raw in used:
            raise DataError(path, f"columns {used[raw]!r} and {c!r} both give the field {raw!r}; keep one", field=c)
        used[raw] = c
    item_col = aliases["item_id"]
    if item_col not in used:
        raise DataError(path, f"missing column 'item_id' (or {item_col!r}); columns: {list(table.columns)}", field="item_id")
    if len(used) == 1:
        raise DataError(path, f"needs content columns besides the id: any of {[a for a in accepted if aliases[a] != item_col]}",
                        field=used[item_col])
    raw = pd.DataFrame({c: (table[used[c]] if c in used else "") for c in raw_cols}, index=table.index)
    return raw.fillna("").astype(str), used


def strict_prepared(raw: pd.DataFrame, items: pd.DataFrame, spec: TableSpec, report: PrepReport, path: Path,
                    used: dict[str, str]) -> pd.DataFrame:
    """The prepared new items, or a :class:`DataError` for the first row the catalogue would skip or flag."""
    ids = raw[spec.item_col].astype(str).str.strip()
    kept = set(items["item_id"])
    for idx, iid in ids.items():
        if iid not in kept:
            raise DataError(path, f"item {iid!r} has neither text nor an image", row=int(idx) + 2,
                            field=used.get(spec.item_col))
    if spec.image_col is not None and spec.image_col in used:
        given = raw[spec.image_col].astype(str).str.strip()
        found = dict(zip(items["item_id"], items["image_path"]))
        for idx, (iid, g) in enumerate(zip(ids, given)):
            if g and g.lower() not in ("nan", "none", "null") and not found.get(iid):
                raise DataError(path, f"image file not found: {g}", row=int(raw.index[idx]) + 2, field=used[spec.image_col])
    return items.reset_index(drop=True)


def renamed(exc: DataError, used: dict[str, str]) -> DataError:
    """``exc`` naming the table's own column instead of the raw one."""
    if exc.field is None or exc.field not in used or used[exc.field] == exc.field:
        return exc
    return DataError(exc.file, exc.message, row=exc.row, field=used[exc.field])
