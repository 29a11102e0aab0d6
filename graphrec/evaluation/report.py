"""Run outputs: ``metrics.json``, ``metrics_ci.json`` and the Markdown report.

``metrics.json`` has exactly the shape ``{model: {setting: {metric: value}}}`` (issue 6), with
settings among ``cold, warm, hybrid, cold_full``; confidence intervals go to the separate
``metrics_ci.json`` (``{model: {setting: {metric: {"mean", "lo", "hi"}}}}``). Non-finite
values are written as ``null`` so the files are strict JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from graphrec.evaluation.protocol import SETTINGS


def table_metrics(k: int = 20) -> tuple[str, ...]:
    """The columns of the report's tables at cut-off ``k`` (``eval.main_metric``'s K)."""
    return tuple(f"{m}@{k}" for m in ("recall", "ndcg", "hit", "precision", "mrr"))


TABLE_METRICS = table_metrics(20)
Results = Mapping[str, Mapping[str, Mapping[str, float]]]


def _clean(x: Any, where: str) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _clean(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "item"):  # numpy / torch scalars
        return _clean(x.item(), where)
    raise TypeError(f"{where}: value {x!r} of type {type(x).__name__} is not a number")


def check_results(results: Results) -> None:
    """Validate the ``{model: {setting: {metric: number}}}`` shape; errors name the entry."""
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping model -> settings, got {type(results).__name__}")
    for model, per_setting in results.items():
        if not isinstance(per_setting, Mapping):
            raise TypeError(f"results[{model!r}] must map setting -> metrics")
        for setting, metrics in per_setting.items():
            if setting not in SETTINGS:
                raise ValueError(f"results[{model!r}]: unknown setting {setting!r}; expected one of {SETTINGS}")
            if not isinstance(metrics, Mapping):
                raise TypeError(f"results[{model!r}][{setting!r}] must map metric -> number")
            for m, v in metrics.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "item"):
                    raise TypeError(f"results[{model!r}][{setting!r}][{m!r}] = {v!r} is not a number")


def write_metrics_json(path: str | Path, results: Results) -> Path:
    """Write ``{model: {setting: {metric: value}}}`` (e.g. ``{m: evaluate(...)}``) as JSON."""
    check_results(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {str(m): {str(s): _clean(dict(v), f"{m}.{s}") for s, v in r.items()} for m, r in results.items()}
    path.write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return path


def read_metrics_json(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """Read a ``metrics.json`` (``null`` becomes NaN); checks the shape."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    data = {m: {s: {k: (float("nan") if v is None else v) for k, v in ms.items()} for s, ms in r.items()}
            for m, r in data.items()}
    try:
        check_results(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return data


def write_ci_json(path: str | Path, ci: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> Path:
    """Write ``{model: {setting: {metric: {"mean", "lo", "hi", ...}}}}`` (``metrics_ci.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(ci, "ci"), indent=2, allow_nan=False) + "\n")
    return path


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _table(rows: list[str], cols: Sequence[str], cell) -> list[str]:
    out = ["| model | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    out += [f"| {r} | " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return out


def render_report_md(
    results: Results,
    ci: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None = None,
    notes: Mapping[str, Mapping[str, str]] | None = None,
    command: str = "",
    tuning_budgets: Mapping[str, Any] | None = None,
    *,
    title: str = "graphrec evaluation report",
    metrics: Sequence[str] = TABLE_METRICS,
    beyond: Results | None = None,
    buckets: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None = None,
    oracle: Mapping[str, Mapping[str, float]] | None = None,
    remarks: Sequence[str] = (),
    plots: Sequence[str | Path] = (),
    missing_modality: Mapping[str, Mapping[str, float]] | None = None,
    sections: Sequence[str] = (),
) -> str:
    """The Markdown report as a string (see :func:`write_report_md`).

    ``sections``: ready Markdown sections (e.g. :func:`graphrec.evaluation.fairness.run_fairness`'s)
    placed after the tables and before the tuning budgets, notes and plots.
    """
    check_results(results)
    lines = [f"# {title}", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    lines += ["Full ranking over all candidates (no sampled negatives); the user's known history "
              "(train, and validation at test time) is excluded. Settings: `cold` ranks cold-test items, "
              "`warm` warm items, `hybrid` both, `cold_full` cold-test positives among every catalogue item.", ""]
    if ci:
        lines += ["Cells: mean over users [95% bootstrap CI over users].", ""]
    for s in SETTINGS:
        lines += _setting_table(results, s, metrics, ci, notes)
    if beyond:
        lines += _beyond_section(beyond)
    if buckets:
        lines += _buckets_section(buckets)
    if oracle:
        lines += _flat_section("## Warm oracle", "Same cold-test items; the oracle saw part of each item's users in "
                               "training. All rows here are evaluated on the oracle split (remaining interactions).", oracle)
    if missing_modality:
        lines += _flat_section("## Cold items with a modality removed", "Cold setting (test); each row removes one "
                               "modality from every cold item (zero features, mask off) and scores again; `both` = "
                               "nothing removed.", missing_modality)
    for sec in sections:
        lines += [sec.rstrip("\n"), ""]
    if tuning_budgets:
        lines += _budgets_section(tuning_budgets)
    other = [(m, s, r) for m, per in (notes or {}).items() for s, r in per.items() if s not in results.get(m, {})
             and s not in SETTINGS]
    if remarks or other:
        lines += ["## Notes", ""] + [f"- {r}" for r in remarks] + [f"- {m} ({s}): {r}" for m, s, r in other] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _setting_table(results: Results, s: str, metrics: Sequence[str],
                   ci: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None,
                   notes: Mapping[str, Mapping[str, str]] | None) -> list[str]:
    """Setting ``s``: one row per model (best value bold, CI after it), then why other models lack it."""
    models = list(results)
    rows = [m for m in models if s in results[m]]
    if not rows:
        return []
    best = {c: max((results[m][s].get(c, float("nan")) for m in rows), default=float("nan")) for c in metrics}

    def cell(m, c):
        v = results[m][s].get(c)
        txt = _fmt(v)
        if v is not None and math.isfinite(v) and v == best[c] and len(rows) > 1:
            txt = f"**{txt}**"
        iv = (ci or {}).get(m, {}).get(s, {}).get(c)
        if iv:
            txt += f" [{_fmt(iv['lo'])}, {_fmt(iv['hi'])}]"
        return txt

    n_users = {results[m][s].get("n_users") for m in rows} - {None}
    lines = [f"## {s}" + (f" ({', '.join(str(int(n)) for n in sorted(n_users))} users)" if n_users else ""), ""]
    lines += _table(rows, metrics, cell) + [""]
    missing = [m for m in models if s not in results[m]]
    for m in missing:
        why = (notes or {}).get(m, {}).get(s, "not evaluated")
        lines.append(f"- {m}: {why}")
    if missing:
        lines.append("")
    return lines


def _beyond_section(beyond: Results) -> list[str]:
    """Coverage, novelty and tail share per setting."""
    lines = ["## Beyond accuracy", "", "Coverage: share of candidates recommended to anyone; novelty: mean "
             "-log2 p(item) with add-one smoothed train popularity; tail share: share of slots given to the "
             "least popular 20% of candidates (n/a when all candidates are equally popular, e.g. `cold`).", ""]
    for s in SETTINGS:
        rows = [m for m in beyond if s in beyond[m]]
        if rows:
            cols = list(beyond[rows[0]][s])
            lines += [f"### {s}", ""] + _table(rows, cols, lambda m, c, s=s: _fmt(beyond[m][s].get(c))) + [""]
    return lines


def _buckets_section(buckets: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> list[str]:
    """Recall per item-popularity bucket, one table per setting."""
    bk = next((key for b in buckets.values() for per in b.values() for v in per.values() for key in v
               if key.startswith("recall@")), "recall@20")
    lines = [f"## Recall@{bk.partition('@')[2]} per item-popularity bucket", "",
             "Warm items in train-popularity quantile buckets; cold-test items are their own bucket.", ""]
    for s in SETTINGS:
        rows = [m for m in buckets if s in buckets[m]]
        if rows:
            cols = list(dict.fromkeys(b for m in rows for b in buckets[m][s]))
            key = next(iter(next(iter(buckets[rows[0]][s].values())))) if buckets[rows[0]][s] else "recall@20"
            lines += [f"### {s}", ""] + _table(
                rows, cols, lambda m, c, s=s, key=key: _fmt(buckets[m][s].get(c, {}).get(key))) + [""]
    return lines


def _flat_section(heading: str, text: str, table: Mapping[str, Mapping[str, float]]) -> list[str]:
    """A heading, one paragraph and one ``{row: {column: value}}`` table (columns in order of first mention)."""
    cols = list(dict.fromkeys(c for v in table.values() for c in v))
    return [heading, "", text, ""] + _table(list(table), cols, lambda m, c: _fmt(table[m].get(c))) + [""]


def _budgets_section(tuning_budgets: Mapping[str, Any]) -> list[str]:
    lines = ["## Tuning budgets", "", "Selected on validation only; test read once.", "",
             "| model | budget |", "| --- | --- |"]
    for m, b in tuning_budgets.items():
        txt = ", ".join(f"{k}: {v}" for k, v in b.items()) if isinstance(b, Mapping) else str(b)
        lines.append(f"| {m} | {txt} |")
    lines.append("")
    return lines


def write_report_md(
    path: str | Path,
    results: Results,
    ci: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None = None,
    notes: Mapping[str, Mapping[str, str]] | None = None,
    command: str = "",
    tuning_budgets: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Path:
    """Write the Markdown report: one table per setting (models as rows) and the exact command.

    Args:
        path: output file (e.g. ``run_dir/report.md``).
        results: ``{model: {setting: {metric: value}}}`` as in ``metrics.json``.
        ci: ``{model: {setting: {metric: {"lo", "hi"}}}}`` shown as ``[lo, hi]`` after values.
        notes: ``{model: {setting: reason}}`` for omitted settings (``EvalResult.notes``),
            listed under each table.
        command: the exact command line that produced the run.
        tuning_budgets: ``{model: "20 trials ..." or {"trials": 20, "grid": ...}}``.
        **kwargs: keyword options of :func:`render_report_md` (``beyond``, ``buckets``,
            ``oracle``, ``remarks``, ``plots`` (paths relative to the report), ``metrics``, ``title``,
            ``sections`` (extra Markdown sections, e.g. the fairness audit)).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report_md(results, ci, notes, command, tuning_budgets, **kwargs))
    return path
