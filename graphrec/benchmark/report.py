"""The benchmark's Markdown report and per-run plot (from ``summary.json``'s content)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from graphrec.config import Config

SETTINGS = ("cold", "warm", "hybrid", "cold_full")
METRICS = ("recall@20", "ndcg@20")
MAIN = "graphrec"


def _f(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4f}"


def _ci(v: dict) -> str:
    lo, hi = v["ci95"]
    return f"{_f(v['mean'])} [{_f(lo)}, {_f(hi)}]"


def _model_tables(summary: dict) -> list[str]:
    lines = []
    for s in SETTINGS:
        rows = [m for m, v in summary["models"].items() if s in v]
        if not rows:
            continue
        lines += [f"### {s}", "", "| model | " + " | ".join(f"{m} mean [95% CI over runs]" for m in METRICS)
                  + " | per-run recall@20 |", "| --- |" + " ---: |" * (len(METRICS) + 1)]
        for m in sorted(rows, key=lambda m: -summary["models"][m][s]["recall@20"]["mean"]):
            v = summary["models"][m][s]
            per = ", ".join(f"{x:.3f}" for x in v["recall@20"]["per_run"])
            lines.append(f"| {m} | " + " | ".join(_ci(v[met]) for met in METRICS) + f" | {per} |")
        lines.append("")
    return lines


def _paired_table(summary: dict) -> list[str]:
    lines = ["| baseline | setting | metric | ratio graphrec / baseline [paired 95% CI] | runs won | resolved |",
             "| --- | --- | --- | ---: | ---: | --- |"]
    for b, per in summary["paired"].items():
        for s in SETTINGS:
            for met in METRICS:
                p = per.get(s, {}).get(met)
                if p is None:
                    continue
                lines.append(f"| {b} | {s} | {met} | {_f(p['ratio'])} [{_f(p['ci95'][0])}, {_f(p['ci95'][1])}] | "
                             f"{p['wins']}/{p['runs']} | {p['resolved']} |")
    return lines + [""]


def _within_table(summary: dict) -> list[str]:
    if not summary.get("within_run"):
        return []
    lines = ["Cold setting, per run: 95% interval of GraphRec / baseline recall@20 from a paired bootstrap over the "
             "cold-test items (rankings fixed; the item draw's share of the uncertainty).", "",
             "| baseline | " + " | ".join(f"run {r}" for r in summary["within_run"]) + " |",
             "| --- |" + " ---: |" * len(summary["within_run"])]
    names = sorted({b for w in summary["within_run"].values() for b in w["paired"]})
    for b in names:
        cells = []
        for w in summary["within_run"].values():
            iv = w["paired"].get(b, {}).get("recall@20")
            cells.append(f"[{_f(iv[0])}, {_f(iv[1])}]" if iv else "n/a")
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return lines + [""]


def _budget_table(summary: dict) -> list[str]:
    if not summary.get("budgets"):
        return []
    lines = ["Each trainable baseline early-stops on its own run's validation; the table gives, per run, the "
             "best epoch, the epochs run and the epoch cap of the selected configuration (a cap that binds would "
             "show best epoch = cap).", "",
             "| baseline | configs tuned (run 0) | chosen parameters | best epoch / epochs run / cap per run |",
             "| --- | ---: | --- | --- |"]
    for name, rows in summary["budgets"].items():
        if not rows:
            continue
        tuned = next((r for r in rows if r["tuned_here"]), rows[0])
        params = {k: v for k, v in tuned["params"].items() if k != "teacher"}
        per = "; ".join(f"{r['best_epoch']}/{r['epochs_run']}/{r['epoch_cap']}" if r["epoch_cap"] else "no training"
                        for r in rows)
        lines.append(f"| {name} | {tuned['configs']} | {params} | {per} |")
    return lines + [""]


def best_baseline(summary: dict[str, Any], setting: str, metric: str) -> str | None:
    """The baseline with the highest mean over runs in ``setting``/``metric``."""
    cands = {m: v[setting][metric]["mean"] for m, v in summary["models"].items()
             if not m.startswith(MAIN) and setting in v}
    return max(cands, key=cands.get) if cands else None


def render_report(summary: dict[str, Any], cfg: Config, command: str, plots: Sequence[str] = ()) -> str:
    """``benchmark/report.md``: headline, per-model tables, paired ratios, within-run intervals, budgets."""
    b = cfg.benchmark
    lines = ["# graphrec item k-fold benchmark", "", "Produced by:", "", "```bash", command, "```", "",
             f"{summary['runs']} runs of a {summary['folds']}-fold item partition (popularity-stratified, seed "
             f"{b.fold_seed}); run r: fold r cold-test, fold r+1 cold-validation, warm interactions split per user "
             "80/10/10. Every model is trained and selected on the run's validation files and evaluated once on its "
             "test files (full ranking). "
             + ("Baseline hyper-parameters were tuned on run 0's validation and reused by the other runs (each "
                "still early-stops on its own validation). " if b.tune_first_run_only else "")
             + "Intervals over runs are Student-t 95% intervals; a ratio is *resolved* when its paired interval "
             "excludes 1.", ""]
    if "graphrec" in summary["models"]:
        lines += ["## Headline", ""]
        for s in SETTINGS:
            for met in METRICS:
                bb = best_baseline(summary, s, met)
                if bb is None or s not in summary["models"]["graphrec"]:
                    continue
                p = summary["paired"][bb][s][met]
                g = summary["models"]["graphrec"][s][met]
                lines.append(f"- {s} {met}: graphrec {_ci(g)} vs best baseline {bb} "
                             f"{_ci(summary['models'][bb][s][met])}: ratio {_f(p['ratio'])} "
                             f"[{_f(p['ci95'][0])}, {_f(p['ci95'][1])}], won {p['wins']}/{p['runs']} runs, {p['resolved']}")
        lines.append("")
    lines += ["## Models (mean over runs)", ""] + _model_tables(summary)
    if summary["paired"]:
        lines += ["## GraphRec against each baseline (paired over runs)", ""] + _paired_table(summary)
    lines += (["## Within-run uncertainty from the item draw", ""] + _within_table(summary)) if summary.get("within_run") else []
    lines += (["## Baseline budgets", ""] + _budget_table(summary)) if summary.get("budgets") else []
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def plot_per_run(summary: dict[str, Any], path: Path) -> Path:
    """Per-run values per model (cold recall@20, cold NDCG@20, warm recall@20, hybrid recall@20)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s, m) for s, m in (("cold", "recall@20"), ("cold", "ndcg@20"), ("warm", "recall@20"), ("hybrid", "recall@20"))
              if any(s in v for v in summary["models"].values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
    for ax, (s, met) in zip(axes[0], panels):
        models = sorted([m for m, v in summary["models"].items() if s in v],
                        key=lambda m: summary["models"][m][s][met]["mean"])
        for y, m in enumerate(models):
            v = summary["models"][m][s][met]
            ax.scatter(v["per_run"], [y] * len(v["per_run"]), s=14, alpha=0.7, color="C0" if m.startswith("graphrec") else "C7")
            ax.errorbar(v["mean"], y, xerr=[[v["mean"] - v["ci95"][0]], [v["ci95"][1] - v["mean"]]], fmt="|", color="k")
        ax.set_yticks(range(len(models)))
        ax.set_yticklabels(models, fontsize=8)
        ax.set_title(f"{s} {met}")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
