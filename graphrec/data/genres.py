"""Genre targets for masked attribute prediction, and keeping genres out of the inputs.

The items table's ``genres`` column is ``|``-separated (ml1m-mm: 18 MovieLens genres).
:func:`genre_targets` turns it into a multi-hot matrix aligned to ``RecData.item_ids``.

Hiding genres from the input matters: the default text template
(``graphrec.encoders.template.DEFAULT_TEMPLATE``) contains ``Genres: {genres}.``, so text features
encoded with it make genre prediction a copy task. Two remedies:

* encode text with :func:`graphrec.encoders.template.template_without_genres` (``encoders.text.template`` set to
  ``"{title}. {plot} Directed by {director}. Starring {actors}."``); the title and plot still
  carry genre evidence, which is the point of the task, but not the labels themselves;
* or predict genres only from modalities that never saw them (the task's
  ``ssl_genre_hidden`` option drops the text view from the classifier's input).
"""

from __future__ import annotations

import math

import pandas as pd
import torch


def _split(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [g.strip() for g in str(value).split("|") if g.strip()]


def genre_targets(items: pd.DataFrame, column: str = "genres", vocab: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str], dict]:
    """Multi-hot genre targets of every item row.

    Args:
        items: items table (row order = item index, as ``RecData.items``).
        column: the ``|``-separated genre column.
        vocab: fixed genre vocabulary (default: every genre in the table, sorted). Genres not
            in a given vocabulary are counted in the report, not silently dropped.

    Returns:
        ``(targets (N, G) float, mask (N,) bool = item has >= 1 known genre, vocab, report)``;
        ``report`` counts items without genres and genres outside ``vocab``.
    """
    if column not in items.columns:
        raise KeyError(f"genre_targets: items table has no column {column!r}; columns: {list(items.columns)}")
    lists = [_split(v) for v in items[column].tolist()]
    if vocab is None:
        vocab = sorted({g for gs in lists for g in gs})
    index = {g: j for j, g in enumerate(vocab)}
    t = torch.zeros(len(lists), len(vocab))
    unknown: dict[str, int] = {}
    for i, gs in enumerate(lists):
        for g in gs:
            if g in index:
                t[i, index[g]] = 1.0
            else:
                unknown[g] = unknown.get(g, 0) + 1
    mask = t.sum(1) > 0
    report = {"n_items": len(lists), "n_without_genre": int((~mask).sum()), "n_genres": len(vocab),
              "unknown_genres": unknown}
    return t, mask, list(vocab), report
