"""The columns of a prepared items table: what a text template (``encoders.text.template``) may name.

A leaf module (standard library only) so config validation can use it before any file is read.
Canonical columns (:data:`ITEM_COLUMNS`) are in every prepared table; ml1m-mm adds ``plot,
director, actors, year``; generic data keeps every ``data.text_cols`` column under its template
field name (:func:`template_field`; README "Template fields").
"""

from __future__ import annotations

import re

#: Columns of every prepared items table.
ITEM_COLUMNS = ["item_id", "title", "text", "image_path", "genres"]
#: ml1m-mm's extra text fields (prepared column -> raw column of its items.csv).
ML1M_EXTRA = {"plot": "plot_text", "director": "director", "actors": "actors", "year": "year"}


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


def prepared_item_fields(data_cfg) -> list[str]:
    """Every column of the items table ``data_cfg`` prepares (a :class:`~graphrec.data.config.DataConfig`)."""
    if data_cfg.format == "ml1m-mm":
        return ITEM_COLUMNS + list(ML1M_EXTRA)
    extra = extra_text_fields(list(data_cfg.text_cols), data_cfg.title_col, data_cfg.genres_col)
    return ITEM_COLUMNS + [f for f in extra if f not in ITEM_COLUMNS]
