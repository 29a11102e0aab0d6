"""Evaluation: full-ranking cold/warm/hybrid protocol, metrics, statistics, reports, plots.

Import from the submodules (``graphrec.evaluation.protocol``, ``.metrics``, ``.stats``,
``.beyond``, ``.fairness``, ``.oracle``, ``.report``, ``.plots``, ``.config``); the names below are the
most used ones. Plotting (matplotlib) is imported only inside :mod:`.plots` functions.
"""

from graphrec.evaluation.protocol import SETTINGS, EvalResult, Scorer, evaluate, validation_score

__all__ = ["SETTINGS", "EvalResult", "Scorer", "evaluate", "validation_score"]
