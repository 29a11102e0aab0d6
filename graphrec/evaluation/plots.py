"""PNG plots of a run: Recall@20 per model and setting, recall per popularity bucket, training curves.

matplotlib is imported inside the functions and used through ``Figure`` + the Agg canvas,
so nothing changes the global pyplot backend and no display is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from graphrec.evaluation.protocol import SETTINGS


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, j + 1) for j in range(nrows * ncols)]
    return fig, axes


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _grouped_bars(ax, groups: Sequence[str], series: Mapping[str, Sequence[float]],
                  errors: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for j, (name, vals) in enumerate(series.items()):
        xs = [g + (j - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None and math.isfinite(v) else 0.0 for v in vals]
        yerr = None
        if errors and name in errors:
            ok = [v is not None and math.isfinite(v) for v in vals]  # no error bar where no value
            yerr = [[max(y - lo, 0) if f else float("nan") for y, (lo, _), f in zip(ys, errors[name], ok)],
                    [max(hi - y, 0) if f else float("nan") for y, (_, hi), f in zip(ys, errors[name], ok)]]
        ax.bar(xs, ys, width, label=name, yerr=yerr, capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=15)


def plot_metric_bars(results: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path,
                     metric: str = "recall@20",
                     ci: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None = None) -> Path:
    """Grouped bar chart: one group per setting, one bar per model (missing settings left empty).

    Args:
        results: ``{model: {setting: {metric: value}}}``.
        path: PNG file to write.
        metric: which metric to plot.
        ci: optional ``{model: {setting: {metric: {"lo", "hi"}}}}`` drawn as error bars.
    """
    settings = [s for s in SETTINGS if any(s in r for r in results.values())]
    series = {m: [r.get(s, {}).get(metric, float("nan")) for s in settings] for m, r in results.items()}
    errors = None
    if ci:
        errors = {}
        for m in results:
            iv = [(ci.get(m, {}).get(s, {}).get(metric) or {}) for s in settings]
            errors[m] = [(d.get("lo", v), d.get("hi", v)) if d else (v, v) for d, v in zip(iv, series[m])]
            errors[m] = [(lo if math.isfinite(lo) else 0.0, hi if math.isfinite(hi) else 0.0) for lo, hi in errors[m]]
    fig, (ax,) = _figure(max(6, 1.2 * len(settings) * max(1, len(results)) / 3 + 3), 4)
    _grouped_bars(ax, settings, series, errors)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per model and setting")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_recall_bars(results, path, ci=None) -> Path:
    """Bar chart of Recall@20 per model and setting (see :func:`plot_metric_bars`)."""
    return plot_metric_bars(results, path, "recall@20", ci)


def plot_bucket_recall(buckets: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]], path: str | Path,
                       settings: Sequence[str] = ("hybrid",), metric: str = "recall@20") -> Path:
    """Recall per item-popularity bucket, one panel per setting, one bar per model.

    Args:
        buckets: ``{model: {setting: {bucket_label: {"recall@20": .., ...}}}}`` (from
            :func:`graphrec.evaluation.beyond.bucket_recall` per model).
        path: PNG file to write.
        settings: panels to draw (those no model has are skipped).
        metric: key inside each bucket entry.
    """
    settings = [s for s in settings if any(s in b for b in buckets.values())] or [
        next((s for s in SETTINGS if any(s in b for b in buckets.values())), "hybrid")]
    fig, axes = _figure(5.5 * len(settings), 4, ncols=len(settings))
    for ax, s in zip(axes, settings):
        labels = list(dict.fromkeys(lb for b in buckets.values() for lb in b.get(s, {})))
        series = {m: [b.get(s, {}).get(lb, {}).get(metric, float("nan")) for lb in labels] for m, b in buckets.items()}
        _grouped_bars(ax, labels, series)
        ax.set_title(f"{metric} per popularity bucket ({s})")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_training_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path,
                         x: str | None = None, metrics: Sequence[str] | None = None) -> Path:
    """Training curves: one panel per logged value, one line per model.

    Args:
        curves: ``{model: [{"epoch": 1, "loss": .., "val_ndcg@20": ..}, ...]}``.
        path: PNG file to write.
        x: x-axis key (default ``"epoch"`` if logged, else ``"step"``, else the row number).
        metrics: keys to plot (default: every numeric key other than the x key).
    """
    rows = [r for rs in curves.values() for r in rs]
    if x is None:
        x = "epoch" if any("epoch" in r for r in rows) else "step" if any("step" in r for r in rows) else None
    if metrics is None:
        metrics = list(dict.fromkeys(k for r in rows for k, v in r.items()
                                     if k not in (x, "epoch", "step") and isinstance(v, (int, float))))
    metrics = list(metrics) or ["(none)"]
    fig, axes = _figure(4.5 * len(metrics), 3.5, ncols=len(metrics))
    for ax, key in zip(axes, metrics):
        for model, rs in curves.items():
            pts = [(r.get(x, j) if x else j, r[key]) for j, r in enumerate(rs) if key in r]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=model)
        ax.set_xlabel(x or "row")
        ax.set_title(key)
        if ax.lines:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _audit_setting(audit: Mapping, side: str, prefer: str = "hybrid") -> str | None:
    """``prefer`` if some model has it on ``side`` ("exposure" / "users"), else the first setting any model has."""
    have = [s for s in SETTINGS if any(s in m.get(side, {}) for m in audit["models"].values())]
    return prefer if prefer in have else (have[0] if have else None)


def plot_exposure_vs_relevance(audit: Mapping, path: str | Path, setting: str = "hybrid",
                               groupings: Sequence[str] = ("popularity", "genre")) -> Path:
    """Exposure share per item group next to the group's share of test positives, one bar per model.

    Args:
        audit: :func:`graphrec.evaluation.fairness.fairness_audit` output.
        path: PNG file to write.
        setting: the setting drawn (falls back to the first one audited).
        groupings: item groupings, one panel each (those absent are skipped).
    """
    s = _audit_setting(audit, "exposure", setting)
    models = [m for m, e in audit["models"].items() if s in e["exposure"]]
    panels = [g for g in groupings if models and g in audit["models"][models[0]]["exposure"][s]["groups"]] or ["(none)"]
    sizes = [len(audit["models"][models[0]]["exposure"][s]["groups"].get(g, {})) if models else 1 for g in panels]
    fig, axes = _figure(min(16.0, max(7.0, 0.35 * max(sizes) * (1 + len(models) / 3))), 3.6 * len(panels), nrows=len(panels))
    for ax, g in zip(axes, panels):
        if not models or g == "(none)":
            ax.set_title("no exposure audited")
            continue
        first = audit["models"][models[0]]["exposure"][s]["groups"][g]
        labels = list(first)
        series = {"test positives": [first[lb]["positive_share"] for lb in labels]}
        for m in models:
            grp = audit["models"][m]["exposure"][s]["groups"][g]
            series[m] = [grp.get(lb, {}).get("exposure_share", float("nan")) for lb in labels]
        _grouped_bars(ax, labels, series)
        ax.set_xticklabels(labels, rotation=30 if len(labels) > 4 else 15, ha="right", fontsize=7)
        ax.set_ylabel(f"share of top-{audit['k']} slots / of positives")
        ax.set_title(f"exposure vs relevance per {g} group ({s})")
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_user_group_quality(audit: Mapping, path: str | Path, setting: str = "hybrid", metric: str | None = None) -> Path:
    """Recall@K per user group (activity and each user attribute), one bar per model, 95% intervals.

    Args:
        audit: :func:`graphrec.evaluation.fairness.fairness_audit` output.
        path: PNG file to write.
        setting: the setting drawn (falls back to the first one audited).
        metric: per-user metric (default ``recall@<k>``).
    """
    metric = metric or f"recall@{audit['k']}"
    s = _audit_setting(audit, "users", setting)
    models = [m for m, e in audit["models"].items() if s in e["users"]]
    panels = list(audit["user_groupings"]) if models else ["(none)"]
    sizes = [len(audit["models"][models[0]]["users"][s][g]["groups"]) if models else 1 for g in panels]
    fig, axes = _figure(min(16.0, max(7.0, 0.35 * max(sizes) * (1 + len(models) / 3))), 3.4 * len(panels), nrows=len(panels))
    for ax, g in zip(axes, panels):
        if not models:
            ax.set_title("no user groups audited")
            continue
        labels = list(dict.fromkeys(lb for m in models for lb in audit["models"][m]["users"][s][g]["groups"]))
        series, errors = {}, {}
        for m in models:
            grp = audit["models"][m]["users"][s][g]["groups"]
            iv = [grp.get(lb, {}).get(metric) or {} for lb in labels]
            series[m] = [d.get("mean", float("nan")) for d in iv]
            errors[m] = [(d.get("lo", 0.0), d.get("hi", 0.0)) if d else (0.0, 0.0) for d in iv]
        _grouped_bars(ax, labels, series, errors)
        ax.set_xticklabels(labels, rotation=30 if len(labels) > 4 else 15, ha="right", fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per user {g} group ({s})")
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_rerank_curve(rerank: Mapping, path: str | Path, k: int = 20) -> Path:
    """Accuracy vs exposure over the re-ranking parameter: Recall@K against Gini and cold share.

    Args:
        rerank: ``{model: {"test": [{"lam", "recall@k", "gini@k", "cold_slot_share@k", ...}],
            "chosen": {"accuracy": lam, "gini": lam, "calibrated": lam}}}`` (``fairness.json["rerank"]``);
            each point is labelled with its lambda; the points chosen on validation are marked
            (diamond: accuracy, star: gini, square: calibrated).
        path: PNG file to write.
    """
    fig, axes = _figure(10, 4.2, ncols=2)
    for ax, (xkey, xlabel) in zip(axes, [(f"gini@{k}", f"exposure Gini@{k} (hybrid)"),
                                         (f"cold_slot_share@{k}", "cold share of hybrid slots")]):
        for m, cur in rerank.items():
            pts = cur.get("test") or []
            if not pts:
                continue
            xs, ys = [p[xkey] for p in pts], [p[f"recall@{k}"] for p in pts]
            (line,) = ax.plot(xs, ys, marker="o", label=m)
            for p, x, y in zip(pts, xs, ys):
                ax.annotate(f"{p['lam']:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
            for kind, marker in (("gini", "*"), ("calibrated", "s"), ("accuracy", "D")):
                lam = (cur.get("chosen") or {}).get(kind)
                chosen = [p for p in pts if p["lam"] == lam]
                if chosen:
                    ax.scatter([chosen[0][xkey]], [chosen[0][f"recall@{k}"]], marker=marker, s=160 if marker == "*" else 55,
                               color=line.get_color(), edgecolors="black", zorder=3)
        if xkey.startswith("cold") and rerank:
            pos = next((p["cold_positive_share"] for cur in rerank.values() for p in cur.get("test") or []), None)
            if pos is not None:
                ax.axvline(pos, ls="--", lw=0.8, color="gray", label="cold share of test positives")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"Recall@{k} (hybrid, test)")
        ax.set_title(f"Recall@{k} vs {'Gini' if xkey.startswith('gini') else 'cold share'}", fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle("exposure re-ranking over lambda; chosen on validation: diamond accuracy, star gini, square calibrated",
                 fontsize=9)
    return _save(fig, path)
