"""Scripts that turn raw data sets into the canonical prepared tables (``python -m data_prep.<format>``)."""

from __future__ import annotations

import sys
from typing import Callable

from graphrec.data.report import DataError, PrepReport


def run_prepare(prepare: Callable[[], PrepReport], out: object) -> int:
    """The end of a ``data_prep`` command: run ``prepare()``, print its report; exit code 0, or 2 on bad data."""
    try:
        report = prepare()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"wrote {out}")
    return 0
