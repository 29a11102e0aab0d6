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

from data_prep import run_prepare
from graphrec.data.config import DataConfig
from graphrec.data.fields import extra_text_fields, template_field  # noqa: F401 (re-exported)
from graphrec.data.new_items import raw_view, renamed, strict_prepared
from graphrec.data.report import DataError, PrepReport
from graphrec.data.tables import (ITEM_COLUMNS, TableSpec, build_canonical, canonical_items, known_history, read_table,
                                  write_prepared)
from graphrec.data.users import prepare_users, write_users


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


def items_spec(spec: TableSpec) -> TableSpec:
    """``spec`` keeping every text column under its template field name (:func:`extra_text_fields`)."""
    return dataclasses.replace(spec, extra_cols={**extra_text_fields(list(spec.text_cols), spec.title_col,
                                                                     spec.genres_col), **spec.extra_cols})


def item_columns(spec: TableSpec) -> list[str]:
    """The raw items-file columns preparation reads."""
    cols = [spec.item_col] + list(spec.text_cols) + [c for c in (spec.image_col, spec.genres_col, spec.title_col) if c]
    return list(dict.fromkeys(cols))


def prepare_items(raw_items: pd.DataFrame, spec: TableSpec, report: PrepReport) -> pd.DataFrame:
    """Raw items -> the prepared items table, exactly as :func:`prepare` writes it (``spec`` from
    :func:`items_spec`): canonical columns, template fields, and the named-field ``text``."""
    items = canonical_items(raw_items, spec, report)
    return _named_text(items, raw_items, spec)


def _named_text(items: pd.DataFrame, raw_items: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    if len(spec.text_cols) > 1 and len(items):  # name the fields (a plain ". " join loses which value is what)
        items["text"] = labelled_text(raw_items, spec, items["item_id"])
    return items


def prepare(spec: TableSpec, out_dir: str | Path) -> PrepReport:
    """Read, check and write the canonical tables; returns the prep report.

    Every text column is also kept under its template field name (:func:`extra_text_fields`);
    ``history.csv`` keeps every rated pair, also those below the rating threshold.
    """
    spec = items_spec(spec)
    inter_cols = [spec.user_col, spec.item_col] + [c for c in (spec.timestamp_col, spec.rating_col) if c]
    raw_inter = read_table(spec.interactions_file, inter_cols)
    raw_items = read_table(spec.items_file, item_columns(spec))
    inter, items, report = build_canonical(raw_inter, raw_items, spec)
    users = prepare_users(spec.users_file, "generic", inter, report, spec.user_id_col, spec.user_attribute_cols)
    items = _named_text(items, raw_items, spec)
    write_prepared(out_dir, inter, items, report, known_history(raw_inter, spec, items))
    write_users(out_dir, users)
    return report


def new_item_aliases(cfg: DataConfig) -> dict[str, str]:
    """Column names a new item (``add-items``, the service) may use -> the raw items-file column.

    Each raw column of ``cfg`` is accepted under its own name and under its prepared name
    (``item_id``, ``title``, ``genres``, ``image_path``, or its template field, README "Template fields").
    """
    spec = items_spec(spec_from_config(cfg))
    title = spec.title_col or (spec.text_cols[0] if spec.text_cols else None)
    fields = {raw: f for f, raw in spec.extra_cols.items()}
    out: dict[str, str] = {"item_id": spec.item_col}
    for c in item_columns(spec):
        out[c] = c
        canonical = ("image_path" if c == spec.image_col else "title" if c == title else
                     "genres" if c == spec.genres_col else None)
        if canonical:
            out.setdefault(canonical, c)
        if c in fields:
            out.setdefault(fields[c], c)
    if len(spec.text_cols) == 1:  # the prepared `text` is then that column's value
        out.setdefault("text", spec.text_cols[0])
    return out


def prepare_new_items(table: pd.DataFrame, cfg: DataConfig, path: Path, root: Path) -> pd.DataFrame:
    """New items (columns of :func:`new_item_aliases`) -> prepared rows, as the catalogue's.

    Args:
        table: the new items, every cell a string (row ``r`` of the file is ``table.iloc[r - 2]``).
        cfg: the run's data options.
        path: the file named in errors.
        root: folder relative image paths start from.
    """
    spec = items_spec(dataclasses.replace(spec_from_config(cfg), items_file=path, image_root=root))
    raw, used = raw_view(table, new_item_aliases(cfg), item_columns(spec), path)
    report = PrepReport(source=str(path))
    try:
        items = prepare_items(raw, spec, report)
    except DataError as exc:
        raise renamed(exc, used) from None
    return strict_prepared(raw, items, spec, report, path, used)


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
    return run_prepare(lambda: prepare(spec, a.out), a.out)


if __name__ == "__main__":
    sys.exit(main())
