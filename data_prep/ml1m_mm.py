"""Prepare ml1m-mm (MovieLens-1M with posters and IMDb plots) into graphrec's canonical tables.

Reads ``interactions.csv`` (``user_id,movie_id``: ratings >= 4), ``items.csv`` (one row per movie)
and ``images/{movie_id}.jpg`` from the data set directory, which is never copied: image paths in
the prepared ``items.csv`` point back to it. ``users.dat`` (when present) becomes the prepared
``users.csv`` of audit-only user attributes (gender, age band, occupation; never the zip code;
see :mod:`graphrec.data.users`).

Usage::

    python -m data_prep.ml1m_mm --source ../shared/data/ml1m-mm --out runs/ml1m-mm/prepared
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from data_prep import run_prepare
from graphrec.data.fields import ML1M_EXTRA
from graphrec.data.report import DataError, PrepReport
from graphrec.data.tables import TableSpec, build_canonical, canonical_items, read_table, write_prepared
from graphrec.data.users import prepare_users, write_users

ITEM_COLS = ["movie_id", "title", "genres", "year", "plot_text", "director", "actors", "has_image"]


def item_spec(items_file: Path, image_root: Path, **kwargs) -> TableSpec:
    """How ml1m-mm's item columns map to the prepared table (``image_file``: relative to ``image_root``)."""
    return TableSpec(
        interactions_file=items_file.parent / "interactions.csv", items_file=items_file,
        user_col="user_id", item_col="movie_id", text_cols=["title", "genres_text", "plot_text"],
        title_col="title", image_col="image_file", image_root=image_root, genres_col="genres",
        extra_cols=dict(ML1M_EXTRA), **kwargs)


def with_derived_columns(raw_items: pd.DataFrame) -> pd.DataFrame:
    """``genres_text`` (``|`` as ``, ``) and ``year`` without a trailing ``.0``, as preparation reads them."""
    raw_items = raw_items.copy()
    raw_items["genres_text"] = raw_items["genres"].str.replace("|", ", ", regex=False)
    raw_items["year"] = raw_items["year"].str.replace(r"\.0$", "", regex=True)
    return raw_items


#: New-item columns (``add-items``) -> ml1m-mm's raw columns; ``image_path`` is a file, relative to the table's folder.
NEW_ITEM_ALIASES = {"item_id": "movie_id", "movie_id": "movie_id", "title": "title", "genres": "genres",
                    "plot": "plot_text", "plot_text": "plot_text", "director": "director", "actors": "actors",
                    "year": "year", "image_path": "image_file"}


def prepare_new_items(table: pd.DataFrame, cfg, path: Path, root: Path) -> pd.DataFrame:
    """New items -> prepared rows exactly as :func:`prepare` writes catalogue rows (``cfg`` is unused:
    ml1m-mm's columns are fixed)."""
    from graphrec.data.new_items import raw_view, renamed, strict_prepared

    raw, used = raw_view(table, NEW_ITEM_ALIASES, ["movie_id", "title", "genres", "year", "plot_text", "director",
                                                  "actors", "image_file"], path)
    spec = item_spec(path, root)
    report = PrepReport(source=str(path))
    try:
        items = canonical_items(with_derived_columns(raw), spec, report)
    except DataError as exc:
        raise renamed(exc, used) from None
    return strict_prepared(raw, items, spec, report, path, used)


def prepare(source: str | Path, out_dir: str | Path, min_user_interactions: int = 2, max_items: int = 0,
            sample_seed: int = 0, users_file: str | None = None) -> PrepReport:
    """Turn the ml1m-mm directory ``source`` into canonical tables in ``out_dir``.

    ``users_file``: None reads ``source/users.dat`` when it exists (flagged ``no_users_file``
    otherwise); a path (relative to ``source``) must exist; ``""`` reads no users file.
    """
    src = Path(source).resolve()
    if not src.is_dir():
        raise DataError(src, "data set directory not found (expected ml1m-mm: interactions.csv, items.csv, images/)")
    raw_inter = read_table(src / "interactions.csv", ["user_id", "movie_id"])
    raw_items = with_derived_columns(read_table(src / "items.csv", ITEM_COLS))
    raw_items["image_file"] = ["images/" + m.strip() + ".jpg" if h.strip() == "1" else ""
                               for m, h in zip(raw_items["movie_id"], raw_items["has_image"])]
    spec = item_spec(src / "items.csv", src, min_user_interactions=min_user_interactions, max_items=max_items,
                     sample_seed=sample_seed)
    inter, items, report = build_canonical(raw_inter, raw_items, spec, source=str(src))
    users_path = None
    if users_file is None:
        users_path = src / "users.dat" if (src / "users.dat").is_file() else None
        if users_path is None:
            report.flag("no_users_file", 1, [f"{src / 'users.dat'} not found: the fairness audit groups users by activity only"])
    elif users_file:
        users_path = src / users_file
    users = prepare_users(users_path, "ml1m-mm", inter, report)
    write_prepared(out_dir, inter, items, report)
    write_users(out_dir, users)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_prep.ml1m_mm", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="../shared/data/ml1m-mm", help="ml1m-mm directory (default: %(default)s)")
    p.add_argument("--out", default="runs/ml1m-mm/prepared", help="prepared-data directory (default: %(default)s)")
    p.add_argument("--min-user-interactions", type=int, default=2)
    p.add_argument("--max-items", type=int, default=0, help="keep a seeded random sample of this many items (0 = all)")
    a = p.parse_args(argv)
    return run_prepare(lambda: prepare(a.source, a.out, a.min_user_interactions, a.max_items), a.out)


if __name__ == "__main__":
    sys.exit(main())
