"""File inspection for ``graphrec init``: read a raw file as ``data.format: generic`` does, describe each column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from graphrec.data.report import DataError

#: Rows read per file to inspect it (the decisions need shapes and scales, not every row).
MAX_ROWS = 200_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass
class ColumnInfo:
    """What one column looks like.

    ``kind``: ``integer``, ``number``, ``text`` or ``empty`` (every value blank).
    """

    name: str
    kind: str
    n_values: int
    n_empty: int
    n_unique: int
    examples: list[str]
    minimum: float | None = None
    maximum: float | None = None
    mean_length: float = 0.0
    pipe_share: float = 0.0  # share of non-empty values containing '|'
    path_share: float = 0.0  # share of non-empty values ending in an image suffix
    url_share: float = 0.0  # share of non-empty values that are http(s) URLs

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")


@dataclass
class TableInfo:
    """Columns of one file, in file order (``rows`` read: at most :data:`MAX_ROWS`)."""

    path: Path
    rows: int
    truncated: bool
    columns: list[ColumnInfo]

    def column(self, name: str) -> ColumnInfo:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def is_blank(s: pd.Series) -> pd.Series:
    st = s.astype(str).str.strip()
    return (st == "") | st.str.lower().isin(["nan", "none", "null", "na", "n/a"])


def read_raw(path: str | Path, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, bool]:
    """Read a file as ``data.format: generic`` does (all strings; ``.tsv``/``.tab`` = tabs).

    Raises:
        DataError: missing file, unparsable file, a header that looks like data, or a file
            that is obviously separated by something other than the expected separator.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    sep = "\t" if path.suffix in (".tsv", ".tab") else ","
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes): it needs a header row naming its columns")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, nrows=max_rows + 1)
    except UnicodeDecodeError:
        from graphrec.data.tables import encoding_error

        raise encoding_error(path, sep) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"cannot be parsed as {'TSV' if sep == chr(9) else 'CSV'}: {exc}") from None
    if df.shape[1] == 1:
        head = str(df.columns[0])
        for other, name in (("\t", "tabs (name the file .tsv)"), ("::", "'::' (MovieLens .dat: convert to CSV)"),
                            (";", "';' (convert to CSV)"), ("|", "'|' (convert to CSV)")):
            if other in head and other != sep:
                raise DataError(path, f"has one column {head[:60]!r}; it looks separated by {name}")
    if all(re.fullmatch(r"-?\d+(\.\d+)?", str(c).strip()) for c in df.columns):
        raise DataError(path, f"the first line {list(df.columns)[:4]} looks like data, not a header; add a header line")
    truncated = len(df) > max_rows
    return df.iloc[:max_rows], truncated


def inspect_column(name: str, s: pd.Series) -> ColumnInfo:
    """Type and shape of one column of strings."""
    blank = is_blank(s)
    vals = s[~blank].astype(str).str.strip()
    n = len(vals)
    info = ColumnInfo(name=name, kind="empty", n_values=len(s), n_empty=int(blank.sum()), n_unique=int(vals.nunique()),
                      examples=list(dict.fromkeys(vals.head(50)))[:3])
    if n == 0:
        return info
    num = pd.to_numeric(vals, errors="coerce")
    if num.notna().all():
        info.kind = "integer" if bool((num == num.round()).all()) and not vals.str.contains(r"[.eE]").any() else "number"
        info.minimum, info.maximum = float(num.min()), float(num.max())
    else:
        info.kind = "text"
    info.mean_length = float(vals.str.len().mean())
    info.pipe_share = float(vals.str.contains("|", regex=False).mean())
    info.path_share = float(vals.str.lower().str.endswith(IMAGE_SUFFIXES).mean())
    info.url_share = float(vals.str.match(r"^https?://").mean())
    return info


def inspect_table(path: str | Path, max_rows: int = MAX_ROWS) -> TableInfo:
    """Read ``path`` and describe every column (see :class:`ColumnInfo`)."""
    df, truncated = read_raw(path, max_rows)
    cols = [inspect_column(str(c), df[c]) for c in df.columns]
    return TableInfo(Path(path), len(df), truncated, cols)
