"""Prepare any data set given as an interactions file plus an items file.

Usage::

    python -m data_prep.generic --interactions ratings.csv --items items.csv \
        --user-col user --item-col item --rating-col rating --rating-threshold 4 \
        --text-cols title description --image-col image --out runs/mydata/prepared

Writes graphrec's canonical tables (see :mod:`graphrec.data.tables`) and ``prep_report.json``;
with ``--users`` (``users_file``) also ``users.csv``, audit-only user attributes
(:mod:`graphrec.data.users`).

The prepared ``items.csv`` keeps every text column under a template field name
(:func:`template_field`: lower case, non-alphanumerics as ``_``), next to the canonical
``item_id, title, text, image_path, genres``, so ``encoders.text.template`` can name them.
With two or more text columns the default ``text`` names its fields
(``"Title: Toy Story (1995). Year: 1995. Genres: Animation, Children's."``); with one it is
that column's value.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

import pandas as pd

from graphrec.data.config import DataConfig
from graphrec.data.report import DataError, PrepReport
from graphrec.data.tables import ITEM_COLUMNS, TableSpec, build_canonical, read_table, write_prepared
from graphrec.data.users import prepare_users, write_users


def template_field(col: str) -> str:
    """The prepared items table's column (a text template field) for raw text column ``col``."""
    f = re.sub(r"\W+", "_", col.strip()).strip("_").lower() or "field"
    return f"f_{f}" if f[0].isdigit() else f


def extra_text_fields(text_cols: list[str], title_col: str | None, genres_col: str | None) -> dict[str, str]:
    """Template field -> raw column for the text columns kept beside the canonical ones.

    A column already in the table under its own name (the title column as ``title``, the
    genres column as ``genres``) is not repeated; any other clash with a canonical column
    name gets a ``raw_`` prefix (``text`` -> ``raw_text``).
    """
    out: dict[str, str] = {}
    for c in text_cols:
        f = template_field(c)
        if f in ITEM_COLUMNS:
            if (f == "title" and c == (title_col or text_cols[0])) or (f == "genres" and c == genres_col):
                continue
            f = f"raw_{f}"
        out.setdefault(f, c)
    return out


def labelled_text(raw_items: pd.DataFrame, spec: TableSpec, item_ids: pd.Series) -> list[str]:
    """``"Field: value."`` sentences over ``spec.text_cols`` for ``item_ids`` (empty fields dropped)."""
    by_id = raw_items.assign(_id=raw_items[spec.item_col].astype(str).str.strip()).drop_duplicates("_id").set_index("_id")
    labels = {c: template_field(c).replace("_", " ").capitalize() for c in spec.text_cols}
    rows = by_id.reindex(list(item_ids))[list(spec.text_cols)].fillna("").astype(str).to_numpy()
    out = []
    for row in rows:
        parts = []
        for c, v in zip(spec.text_cols, row):
            v = v.strip()
            if v and v.lower() not in ("nan", "none", "null"):
                v = ", ".join(g.strip() for g in v.split("|") if g.strip()) if c == spec.genres_col else v
                parts.append(f"{labels[c]}: {v.rstrip('.')}.")
        out.append(" ".join(parts))
    return out


def spec_from_config(cfg: DataConfig) -> TableSpec:
    root = Path(cfg.source)
    return TableSpec(
        interactions_file=root / cfg.interactions_file, items_file=root / cfg.items_file,
        user_col=cfg.user_col, item_col=cfg.item_col, timestamp_col=cfg.timestamp_col,
        rating_col=cfg.rating_col, rating_threshold=cfg.rating_threshold, text_cols=list(cfg.text_cols),
        title_col=cfg.title_col, image_col=cfg.image_col, genres_col=cfg.genres_col,
        min_user_interactions=cfg.min_user_interactions, max_items=cfg.max_items, sample_seed=cfg.sample_seed,
        users_file=root / cfg.users_file if cfg.users_file else None, user_id_col=cfg.user_id_col,
        user_attribute_cols=list(cfg.user_attribute_cols),
    )


def prepare(spec: TableSpec, out_dir: str | Path) -> PrepReport:
    """Read, check and write the canonical tables; returns the prep report.

    Every text column is also kept under its template field name (:func:`extra_text_fields`).
    """
    spec = dataclasses.replace(spec, extra_cols={**extra_text_fields(list(spec.text_cols), spec.title_col,
                                                                     spec.genres_col), **spec.extra_cols})
    inter_cols = [spec.user_col, spec.item_col] + [c for c in (spec.timestamp_col, spec.rating_col) if c]
    item_cols = [spec.item_col] + list(spec.text_cols) + [c for c in (spec.image_col, spec.genres_col, spec.title_col) if c]
    raw_inter = read_table(spec.interactions_file, inter_cols)
    raw_items = read_table(spec.items_file, list(dict.fromkeys(item_cols)))
    inter, items, report = build_canonical(raw_inter, raw_items, spec)
    users = prepare_users(spec.users_file, "generic", inter, report, spec.user_id_col, spec.user_attribute_cols)
    if len(spec.text_cols) > 1:  # name the fields (a plain ". " join loses which value is what)
        items["text"] = labelled_text(raw_items, spec, items["item_id"])
    write_prepared(out_dir, inter, items, report)
    write_users(out_dir, users)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_prep.generic", description=__doc__.split("\n\n")[0])
    p.add_argument("--interactions", required=True, help="interactions CSV/TSV")
    p.add_argument("--items", required=True, help="items CSV/TSV")
    p.add_argument("--out", required=True, help="prepared-data directory to write")
    p.add_argument("--user-col", default="user_id")
    p.add_argument("--item-col", default="item_id")
    p.add_argument("--timestamp-col", default=None)
    p.add_argument("--rating-col", default=None)
    p.add_argument("--rating-threshold", type=float, default=4.0)
    p.add_argument("--text-cols", nargs="+", default=["title"])
    p.add_argument("--title-col", default=None)
    p.add_argument("--image-col", default=None, help="image path column, relative to the items file's folder")
    p.add_argument("--genres-col", default=None)
    p.add_argument("--min-user-interactions", type=int, default=2)
    p.add_argument("--users", default=None, help="optional users CSV/TSV of audit-only attributes (fairness audit)")
    p.add_argument("--user-id-col", default="user_id", help="user id column of --users")
    p.add_argument("--user-attribute-cols", nargs="*", default=[], help="audited columns of --users (default: all)")
    a = p.parse_args(argv)
    spec = TableSpec(
        interactions_file=Path(a.interactions), items_file=Path(a.items), user_col=a.user_col,
        item_col=a.item_col, timestamp_col=a.timestamp_col, rating_col=a.rating_col,
        rating_threshold=a.rating_threshold, text_cols=a.text_cols, title_col=a.title_col,
        image_col=a.image_col, genres_col=a.genres_col, min_user_interactions=a.min_user_interactions,
        users_file=Path(a.users) if a.users else None, user_id_col=a.user_id_col,
        user_attribute_cols=a.user_attribute_cols)
    try:
        report = prepare(spec, a.out)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
