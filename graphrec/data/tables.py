"""Canonical interaction and item tables, built from raw files with strict checks.

Canonical tables (all ids are strings, the original ids):

* ``interactions.csv``: ``user_id, item_id`` (+ ``timestamp`` when the source has one), one row per
  implicit positive, deduplicated.
* ``history.csv``: ``user_id, item_id``, every known pair of a catalogue item whatever its rating
  (a superset of the interactions; serving excludes it from recommendations).
* ``items.csv``: ``item_id, title, text, image_path, genres`` + any extra text fields the source
  keeps (ml1m-mm: ``plot, director, actors, year``). ``text`` is the default joined text;
  ``image_path`` is an absolute path to an existing file or empty; ``genres`` is ``|``-separated.

Every check either raises :class:`DataError` naming file, row and field, or counts a skip / flag
in the :class:`PrepReport`. Row numbers are 1-based file lines (the header is line 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from graphrec.data.fields import ITEM_COLUMNS  # noqa: F401 (re-exported)
from graphrec.data.report import DataError, PrepReport

#: Every known (user, item) pair, positives or not (what serving excludes); :func:`known_history`.
HISTORY_FILE = "history.csv"


def read_table(path: str | Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV/TSV with every column as string; a missing file or column is a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a directory, not a table file")
    sep = "\t" if path.suffix in (".tsv", ".tab") else ","
    kind = "TSV" if sep == "\t" else "CSV"
    if path.stat().st_size == 0:
        raise DataError(path, f"empty file (0 bytes): a {kind} file needs a header row naming its columns")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise encoding_error(path, sep) from None
    except pd.errors.EmptyDataError:
        raise DataError(path, f"no header row: a {kind} file needs a first line naming its columns") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise DataError(path, f"cannot be parsed as {kind}: {exc}", row=int(m.group(1)) if m else None) from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(df.columns)}", field=missing[0])
    return df


def encoding_error(path: Path, sep: str) -> DataError:
    """The first byte that is not UTF-8, as file line (row), column and byte position in that line."""
    import csv

    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        row = raw.count(b"\n", 0, exc.start) + 1
        head = raw[: raw.find(b"\n")].decode("utf-8", errors="replace").rstrip("\r")
        cols = next(csv.reader([head], delimiter=sep), [])
        prefix = raw[start: exc.start].decode("utf-8", errors="replace")
        n_sep = len(next(csv.reader([prefix], delimiter=sep), [""])) - 1 if prefix else 0
        field = cols[n_sep] if 0 <= n_sep < len(cols) else None
        return DataError(path, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start - start + 1} of the line "
                         "(save the file as UTF-8)", row=row, field=field)
    return DataError(path, "not valid UTF-8 (save the file as UTF-8)")


@dataclass
class TableSpec:
    """Which raw columns hold what (see :class:`graphrec.data.config.DataConfig`)."""

    interactions_file: Path
    items_file: Path
    user_col: str = "user_id"
    item_col: str = "item_id"
    timestamp_col: str | None = None
    rating_col: str | None = None
    rating_threshold: float = 4.0
    text_cols: list[str] = field(default_factory=lambda: ["title"])
    title_col: str | None = None
    image_col: str | None = None
    image_root: Path | None = None
    genres_col: str | None = None
    extra_cols: dict[str, str] = field(default_factory=dict)  # canonical name -> raw column
    text_joiner: str = ". "
    min_user_interactions: int = 2
    max_items: int = 0  # > 0: keep a seeded random sample of this many items (quick runs)
    sample_seed: int = 0
    users_file: Path | None = None  # audit-only user attributes (graphrec.data.users)
    user_id_col: str = "user_id"
    user_attribute_cols: list[str] = field(default_factory=list)


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) + 2 for i in mask.index[mask.to_numpy()]]  # index labels = raw file positions


def _blank(s: pd.Series) -> pd.Series:
    st = s.fillna("").astype(str).str.strip()
    return (st == "") | st.str.lower().isin(["nan", "none", "null"])


def canonical_items(raw: pd.DataFrame, spec: TableSpec, report: PrepReport) -> pd.DataFrame:
    """Check and convert the raw items table (see module docstring)."""
    f = spec.items_file
    ids = raw[spec.item_col].astype(str).str.strip()
    blank = ids == ""
    if blank.any():
        raise DataError(f, "empty item id", row=_rows(blank)[0], field=spec.item_col)
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = _rows(dup)[:5]
        raise DataError(f, f"duplicate item id {ids[dup].iloc[0]!r} (rows {rows})", row=rows[0], field=spec.item_col)
    out = pd.DataFrame({"item_id": ids})
    parts = []
    for col in spec.text_cols:
        s = raw[col].fillna("").astype(str).str.strip()
        empty = _blank(raw[col])
        if empty.any() and len(spec.text_cols) > 1:
            report.flag(f"empty_text_field:{col}", int(empty.sum()),
                        [f"{f} row {r} item {i}" for r, i in zip(_rows(empty), ids[empty])])
        parts.append(s.where(~empty, ""))
    text = pd.Series([spec.text_joiner.join(p for p in row if p) for row in zip(*parts)], index=raw.index, dtype=str) if parts else pd.Series("", index=raw.index)
    out["title"] = raw[spec.title_col or spec.text_cols[0]].fillna("").astype(str).str.strip() if (spec.title_col or spec.text_cols) else ids
    out["text"] = text
    no_text = text.str.strip() == ""
    if no_text.any():
        report.flag("items_without_text", int(no_text.sum()), [f"{f} row {r} item {i}" for r, i in zip(_rows(no_text), ids[no_text])])
    out["image_path"] = ""
    if spec.image_col is not None:
        root = spec.image_root or f.parent
        paths = raw[spec.image_col].fillna("").astype(str).str.strip()
        resolved = [str((root / p).resolve()) if p and not _blank(pd.Series([p])).iloc[0] else "" for p in paths]
        exists = pd.Series([bool(p) and Path(p).is_file() for p in resolved], index=raw.index)
        given = pd.Series([bool(p) for p in resolved], index=raw.index)
        gone = given & ~exists
        if gone.any():
            report.flag("image_file_not_found", int(gone.sum()),
                        [f"{f} row {r} field {spec.image_col!r}: {p}" for r, p in zip(_rows(gone), paths[gone])])
        out["image_path"] = [p if e else "" for p, e in zip(resolved, exists)]
    no_image = out["image_path"] == ""
    if no_image.any() and spec.image_col is not None:  # no image column: nothing is missing
        report.flag("items_without_image", int(no_image.sum()), [f"item {i}" for i in ids[no_image]])
    out["genres"] = raw[spec.genres_col].fillna("").astype(str).str.strip() if spec.genres_col else ""
    for name, col in spec.extra_cols.items():
        out[name] = raw[col].fillna("").astype(str).str.strip().where(~_blank(raw[col]), "")
    neither = no_text & no_image
    if neither.any():
        report.skip("items_without_text_or_image", int(neither.sum()),
                    [f"{f} row {r} item {i}" for r, i in zip(_rows(neither), ids[neither])])
        out = out[~neither]
    return out.reset_index(drop=True)


def _numbers(raw: pd.DataFrame, col: str, what: str, path: Path) -> pd.Series:
    """``raw[col]`` as numbers, or a DataError naming the first row whose ``what`` is not a number."""
    values = pd.to_numeric(raw[col], errors="coerce")
    bad = values.isna()
    if bad.any():
        raise DataError(path, f"{what} {raw[col][bad].iloc[0]!r} is not a number", row=_rows(bad)[0], field=col)
    return values


def canonical_interactions(raw: pd.DataFrame, spec: TableSpec, items: pd.DataFrame,
                           dropped_items: set[str], report: PrepReport) -> pd.DataFrame:
    """Check and convert the raw interactions table (see module docstring)."""
    f = spec.interactions_file
    users = raw[spec.user_col].astype(str).str.strip()
    its = raw[spec.item_col].astype(str).str.strip()
    for col, s in ((spec.user_col, users), (spec.item_col, its)):
        bad = _blank(s)
        if bad.any():
            raise DataError(f, "empty id", row=_rows(bad)[0], field=col)
    df = pd.DataFrame({"user_id": users, "item_id": its, "_row": raw.index + 2})
    if spec.timestamp_col:
        df["timestamp"] = _numbers(raw, spec.timestamp_col, "timestamp", f).to_numpy()
    if spec.rating_col:
        r = _numbers(raw, spec.rating_col, "rating", f)
        low = (r < spec.rating_threshold).to_numpy()
        if low.any():
            report.skip("below_rating_threshold", int(low.sum()))
        df = df[~low]
    known = set(items["item_id"])
    no_content = df["item_id"].isin(dropped_items)
    if no_content.any():
        report.skip("interactions_of_items_without_content", int(no_content.sum()),
                    [f"{f} row {r}" for r in df["_row"][no_content]])
        df = df[~no_content]
    unknown = ~df["item_id"].isin(known)
    if unknown.any():
        report.skip("interactions_with_unknown_item", int(unknown.sum()),
                    [f"{f} row {r} field {spec.item_col!r}: {i!r}" for r, i in zip(df["_row"][unknown], df["item_id"][unknown])])
        df = df[~unknown]
    dup = df.duplicated(["user_id", "item_id"], keep="first")
    if dup.any():
        report.skip("duplicate_interactions", int(dup.sum()), [f"{f} row {r}" for r in df["_row"][dup]])
        df = df[~dup]
    counts = df.groupby("user_id")["item_id"].transform("size")
    few = counts < spec.min_user_interactions
    if few.any():
        n_users = df.loc[few, "user_id"].nunique()
        report.skip(f"users_with_fewer_than_{spec.min_user_interactions}_interactions", n_users,
                    [f"user {u}" for u in df.loc[few, "user_id"].unique()])
        report.skip("interactions_of_those_users", int(few.sum()))
        df = df[~few]
    return df.drop(columns="_row").reset_index(drop=True)


def _nothing_left(what: str, n_rows: int, report: PrepReport) -> str:
    if n_rows == 0:
        return f"has a header but no rows: no {what} to prepare"
    removed = ", ".join(f"{k}={v:,}" for k, v in report.skipped.items()) or "nothing"
    return f"no {what} left to prepare: {n_rows:,} rows read, all removed ({removed}; see the prep report's examples)"


def known_history(raw_interactions: pd.DataFrame, spec: TableSpec, items: pd.DataFrame) -> pd.DataFrame:
    """Every known (user, item) pair of a catalogue item, whatever its rating: ``user_id, item_id``.

    Positives are only the pairs rated at or above ``spec.rating_threshold``, but a user has seen
    every item they rated; serving excludes this whole history from recommendations.
    """
    users = raw_interactions[spec.user_col].astype(str).str.strip()
    its = raw_interactions[spec.item_col].astype(str).str.strip()
    df = pd.DataFrame({"user_id": users, "item_id": its})
    df = df[df["item_id"].isin(set(items["item_id"])) & ~_blank(df["user_id"])]
    return df.drop_duplicates().reset_index(drop=True)


def build_canonical(raw_interactions: pd.DataFrame, raw_items: pd.DataFrame, spec: TableSpec,
                    source: str = "") -> tuple[pd.DataFrame, pd.DataFrame, PrepReport]:
    """Raw tables -> canonical (interactions, items, report). See the module docstring."""
    report = PrepReport(source=source or str(spec.interactions_file.parent))
    raw_ids = set(raw_items[spec.item_col].astype(str).str.strip())
    if 0 < spec.max_items < len(raw_items):
        import numpy as np

        keep = np.sort(np.random.default_rng(spec.sample_seed).choice(len(raw_items), spec.max_items, replace=False))
        outside = raw_ids - set(raw_items[spec.item_col].iloc[keep].astype(str).str.strip())
        report.skip("items_outside_sample", len(outside))
        out_rows = raw_interactions[spec.item_col].astype(str).str.strip().isin(outside)
        report.skip("interactions_of_items_outside_sample", int(out_rows.sum()))
        raw_items, raw_interactions = raw_items.iloc[keep], raw_interactions[~out_rows]
        raw_ids = raw_ids - outside
    items = canonical_items(raw_items, spec, report)
    if items.empty:
        raise DataError(spec.items_file, _nothing_left("items", len(raw_items), report))
    dropped = raw_ids - set(items["item_id"])
    inter = canonical_interactions(raw_interactions, spec, items, dropped, report)
    if inter.empty:
        hint = ""
        r = pd.to_numeric(raw_interactions[spec.rating_col], errors="coerce") if spec.rating_col else None
        if r is not None and len(r) and r.max() < spec.rating_threshold:
            hint = (f"; data.rating_threshold={spec.rating_threshold:g} but the ratings range from {r.min():g} to "
                    f"{r.max():g} (only ratings >= the threshold are positives)")
        raise DataError(spec.interactions_file, _nothing_left("interactions", len(raw_interactions), report) + hint,
                        field=spec.rating_col if hint else None)
    idle = ~items["item_id"].isin(set(inter["item_id"]))
    if idle.any():
        report.flag("items_without_interactions", int(idle.sum()), [f"item {i}" for i in items["item_id"][idle]])
    report.kept = {
        "interactions": len(inter),
        "users": int(inter["user_id"].nunique()),
        "items": len(items),
        "items_with_interactions": int(inter["item_id"].nunique()),
        "items_with_text": int((items["text"] != "").sum()),
        "items_with_image": int((items["image_path"] != "").sum()),
    }
    return inter, items, report


def write_prepared(out_dir: str | Path, interactions: pd.DataFrame, items: pd.DataFrame, report: PrepReport,
                   history: pd.DataFrame | None = None) -> Path:
    """Write the canonical tables, ``history.csv`` (:func:`known_history`; default: the
    interactions) and the prep report (JSON) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hist = interactions[["user_id", "item_id"]] if history is None else history[["user_id", "item_id"]]
    tables = {"interactions.csv": interactions, "items.csv": items, HISTORY_FILE: hist}
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.tmp", index=False)
    for name in tables:
        (out / f"{name}.tmp").replace(out / name)
    report.kept["history"] = len(hist)
    report.write(out / "prep_report.json")
    return out


def load_prepared(prepared_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read canonical ``(interactions, items)`` from a prepared directory (ids as strings)."""
    d = Path(prepared_dir)
    if not (d / "interactions.csv").exists():
        raise DataError(d / "interactions.csv", "prepared data not found; run `graphrec prepare` first")
    inter = read_table(d / "interactions.csv", ["user_id", "item_id"])
    items = read_table(d / "items.csv", ITEM_COLUMNS)
    return inter, items


def load_history(prepared_dir: str | Path) -> pd.DataFrame:
    """Every known interaction (``history.csv``, :func:`known_history`); the positives when a
    prepared directory predates it."""
    d = Path(prepared_dir)
    p = d / HISTORY_FILE if (d / HISTORY_FILE).exists() else d / "interactions.csv"
    return read_table(p, ["user_id", "item_id"])[["user_id", "item_id"]]
