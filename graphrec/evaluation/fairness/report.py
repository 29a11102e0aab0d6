"""Outputs of the fairness audit: ``fairness.json`` (strict JSON) and the report section (Markdown)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from graphrec.evaluation.fairness.curves import CHOICES


def _clean(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, torch.Tensor):
        return _clean(x.tolist())
    return x


def write_fairness(path: str | Path, audit: Mapping[str, Any]) -> Path:
    """Write the audit as strict JSON (non-finite numbers as ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(audit), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def _f(v: Any, nd: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _ci(d: Mapping[str, float] | None) -> str:
    if not d:
        return "n/a"
    txt = _f(d.get("mean"))
    if d.get("lo") is not None and d.get("hi") is not None and d["lo"] != d["hi"]:
        txt += f" [{_f(d['lo'], 3)}, {_f(d['hi'], 3)}]"
    return txt


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cols: Sequence[str]) -> list[str]:
    return [_row(cols), "| --- |" + " ---: |" * (len(cols) - 1)]

def fairness_markdown(audit: Mapping[str, Any], *, user_settings: Sequence[str] = ("hybrid",),
                      exposure_settings: Sequence[str] = ("hybrid",), plots: Sequence[str | Path] = ()) -> str:
    """The report section (Markdown) of an audit (plus ``audit["rerank"]`` when present).

    Args:
        audit: :func:`~graphrec.evaluation.fairness.audit.fairness_audit` output, optionally with
            ``"rerank"`` from :func:`~graphrec.evaluation.fairness.audit.run_fairness`.
        user_settings: settings whose per-group quality tables are shown (every setting is in
            the gap summary and in ``fairness.json``).
        exposure_settings: settings whose per-group exposure tables are shown.
        plots: image paths (relative to the report) appended at the end.
    """
    k = audit["k"]
    L = ["## Fairness and exposure audit", "",
         f"Top-{k} lists of the {audit['phase']} phase. Item popularity = train users per item. "
         "Exposure share = share of recommendation slots; positive share = share of the setting's test "
         "positives (what proportional exposure would give); Gini over the setting's candidates (0 = equal "
         "exposure). User groups: intervals are 95% bootstrap intervals over the group's users; groups with "
         f"fewer than {audit['min_group_users']} evaluated users are pooled into `other`. Only group "
         "aggregates are reported; user attributes are never model inputs.", ""]
    L += _exposure_summary(audit)
    for s in exposure_settings:
        L += _exposure_groups(audit, s)
    for s in user_settings:
        L += _user_groups(audit, s)
    L += _gap_summary(audit)
    for m, cur in (audit.get("rerank") or {}).items():
        if cur.get("test"):
            L += _rerank_section(m, cur, k)
    if plots:
        L += [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(L)


def _exposure_summary(audit: Mapping[str, Any]) -> list[str]:
    """Gini per setting, hybrid cold shares and the inheritance correlations of every model."""
    k = audit["k"]
    cols = ["model"]
    for s in ("cold", "warm", "hybrid", "cold_full"):
        cols.append(f"Gini ({s})")
    cols += ["cold slots (hybrid)", "cold positives (hybrid)", "rho score", "rho exposure"]
    L = ["### Exposure summary", ""] + _head(cols)
    for m in audit["models"]:
        e = audit["models"][m]["exposure"]
        inh = audit["models"][m]["inheritance"]
        h = e.get("hybrid", {})
        L.append(_row([m] + [_f(e.get(s, {}).get(f"gini@{k}")) for s in ("cold", "warm", "hybrid", "cold_full")]
                      + [_f(h.get(f"cold_slot_share@{k}")) if h else "n/a", _f(h.get("cold_positive_share")) if h else "n/a",
                         _f(inh.get("rho_score")), _f(inh.get("rho_exposure"))]))
    ref = audit.get("inheritance_reference", {})
    L += ["", f"rho: Spearman correlation, over the {ref.get('n_items', 'n/a')} cold items, between the model's "
          f"signal per cold item (score: mean per-user-standardised score; exposure: top-{k} slots in `cold`) and "
          f"the mean train popularity of the item's {audit['inheritance_k']} most content-similar warm items. "
          f"Reference, the cold items' actual test positives: rho = {_f(ref.get('rho_test_positives'))}; "
          "a model well above it turns content neighbours' popularity into exposure more than users do.", ""]
    return L


def _exposure_groups(audit: Mapping[str, Any], s: str) -> list[str]:
    """Exposure vs positive share per popularity and genre group in setting ``s``."""
    have = [m for m in audit["models"] if s in audit["models"][m]["exposure"]]
    if not have:
        return []
    L: list[str] = []
    for gname in ("popularity", "genre"):
        first = audit["models"][have[0]]["exposure"][s]["groups"].get(gname)
        if not first:
            continue
        L += [f"### Exposure vs relevance per {gname} group ({s})", "",
              "Cells: exposure share (exposure / positive share).", ""]
        L += _head(["group", "items", "positive share"] + have)
        for lb, g0 in first.items():
            cells = [lb, str(g0["n_items"]), _f(g0["positive_share"])]
            for m in have:
                g = audit["models"][m]["exposure"][s]["groups"][gname].get(lb, {})
                cells.append(f"{_f(g.get('exposure_share'))} ({_f(g.get('exposure_to_positive'), 2)})")
            L.append(_row(cells))
        L.append("")
    return L


def _user_groups(audit: Mapping[str, Any], s: str) -> list[str]:
    """Recall [CI] / NDCG per user group of every user grouping in setting ``s``, with the gap row."""
    k = audit["k"]
    have = [m for m in audit["models"] if s in audit["models"][m]["users"]]
    if not have:
        return []
    L: list[str] = []
    for gname in audit["user_groupings"]:
        first = audit["models"][have[0]]["users"][s][gname]
        labels = list(dict.fromkeys(lb for m in have for lb in audit["models"][m]["users"][s][gname]["groups"]))
        if not labels:
            continue
        L += [f"### Recall@{k} [95% CI] / NDCG@{k} per user {gname} group ({s})", ""]
        L += _head(["group", "users"] + have)
        for lb in labels:
            n = first["groups"].get(lb, {}).get("n_users", "")
            cells = []
            for m in have:
                grp = audit["models"][m]["users"][s][gname]["groups"].get(lb, {})
                cells.append(f"{_ci(grp.get(f'recall@{k}'))} / {_f((grp.get(f'ndcg@{k}') or {}).get('mean'))}")
            L.append(_row([lb, str(n)] + cells))
        gaps = []
        for m in have:
            gp = audit["models"][m]["users"][s][gname].get("gap", {})
            r, nd = gp.get(f"recall@{k}"), gp.get(f"ndcg@{k}")
            gaps.append(f"{_f(r['gap'])} [{_f(r['lo'], 3)}, {_f(r['hi'], 3)}] / {_f(nd['gap'])}" if r and nd else "n/a")
        L.append(_row(["**gap (best - worst)**", ""] + gaps))
        L.append("")
    return L


def _gap_summary(audit: Mapping[str, Any]) -> list[str]:
    """Best-worst user-group gap of every model, setting and user grouping."""
    k = audit["k"]
    rows = []
    for m in audit["models"]:
        for s, per in audit["models"][m]["users"].items():
            cells = [m, s]
            for gname in audit["user_groupings"]:
                gp = per.get(gname, {}).get("gap", {})
                r, nd = gp.get(f"recall@{k}"), gp.get(f"ndcg@{k}")
                cells.append(f"{_f(r['gap'])} / {_f(nd['gap'])}" if r and nd else "n/a")
            rows.append(_row(cells))
    if not rows:
        return []
    return ([f"### Best-worst user-group gap, Recall@{k} / NDCG@{k}", ""]
            + _head(["model", "setting"] + list(audit["user_groupings"])) + rows + [""])


def _rerank_section(m: str, cur: Mapping[str, Any], k: int) -> list[str]:
    """The re-ranking curve of model ``m``: validation and test values per lambda, chosen points marked."""
    ch = cur.get("chosen") or {}
    L = [f"### Exposure re-ranking: {m} (hybrid, {cur.get('report_phase', 'test')})", "",
         "score' = z_user(score) - lambda * z(log(1 + train popularity)) (`graphrec.rerank`). "
         f"Points chosen on validation: **accuracy** = the best validation Recall@{k}; among the lambdas "
         f"within {100 * cur.get('tolerance', 0):g}% of that recall, **gini** = the lowest validation exposure "
         "Gini and **calibrated** = the cold slot share closest to the cold share of validation positives"
         f" ({_f(next((p.get('cold_positive_share') for p in cur.get('val', [])), None))}). "
         "Test values are reported, never used for the choice. Serve a point with "
         "`graphrec recommend --exposure-penalty LAMBDA` (or `Recommender.recommend(..., exposure_penalty=LAMBDA)`).", ""]
    L += _head(["lambda", f"val Recall@{k}", f"val Gini@{k}", f"Recall@{k}", f"NDCG@{k}", f"Gini@{k}",
                "cold slot share", "cold positive share"])
    val = {p["lam"]: p for p in cur.get("val", [])}
    for p in cur["test"]:
        marks = [c for c in CHOICES if ch.get(c) is not None and p["lam"] == ch[c]]
        v = val.get(p["lam"], {})
        L.append(_row([f"{p['lam']:g}" + (f" ({', '.join(marks)})" if marks else ""), _f(v.get(f"recall@{k}")),
                       _f(v.get(f"gini@{k}")), _f(p[f"recall@{k}"]), _f(p[f"ndcg@{k}"]), _f(p[f"gini@{k}"]),
                       _f(p[f"cold_slot_share@{k}"]), _f(p["cold_positive_share"])]))
    L.append("")
    return L
