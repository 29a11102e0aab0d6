"""Recompute Recall@K and NDCG@K from the written top-K files and the split files alone.

An independent check of ``metrics.json`` (plain pandas/numpy, no graphrec index space): anyone
can run it on a run directory::

    python -m graphrec.evaluation.recompute runs/ml1m-mm [--k 20] [--tol 1e-6]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from graphrec.paths import RunPaths

POSITIVES = {"cold": ["test_cold"], "warm": ["test_warm"], "hybrid": ["test_warm", "test_cold"], "cold_full": ["test_cold"]}


def recompute(topk_csv: Path, split_dir: Path, setting: str, k: int = 20) -> dict[str, float]:
    """Mean Recall@k and NDCG@k over the users with a test positive in ``setting``."""
    pos = pd.concat([pd.read_csv(split_dir / f"{n}.csv", dtype=str) for n in POSITIVES[setting]])
    truth = pos.groupby("user_id")["item_id"].apply(set).to_dict()
    top = pd.read_csv(topk_csv, dtype={"user_id": str, "item_id": str, "rank": int})
    top = top[top["rank"] <= k].sort_values(["user_id", "rank"])
    ranked = top.groupby("user_id")["item_id"].apply(list).to_dict()
    recalls, ndcgs = [], []
    for u, items in truth.items():
        rec = ranked.get(u, [])
        hits = [1.0 if i in items else 0.0 for i in rec]
        recalls.append(sum(hits) / len(items))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(items))))
        ndcgs.append(dcg / idcg)
    return {f"recall@{k}": sum(recalls) / len(recalls), f"ndcg@{k}": sum(ndcgs) / len(ndcgs), "n_users": len(truth)}


def check_run(run_dir: str | Path, k: int = 20, tol: float = 1e-6) -> list[dict]:
    """Compare every top-K file of a run with ``metrics.json``; returns one row per (model, setting)."""
    paths = RunPaths(Path(run_dir))
    ev = paths.evaluation_files
    metrics = json.loads(ev.metrics.read_text())
    rows = []
    for model, per in metrics.items():
        for setting, vals in per.items():
            f = ev.topk(model, setting)
            if not f.exists():
                continue
            got = recompute(f, paths.split, setting, k)
            for m in (f"recall@{k}", f"ndcg@{k}"):
                rows.append({"model": model, "setting": setting, "metric": m, "metrics.json": vals[m],
                             "recomputed": got[m], "ok": abs(vals[m] - got[m]) <= tol})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--tol", type=float, default=1e-6)
    a = p.parse_args(argv)
    rows = check_run(a.run_dir, a.k, a.tol)
    bad = [r for r in rows if not r["ok"]]
    for r in rows:
        print(f"{'ok ' if r['ok'] else 'BAD'} {r['model']:16s} {r['setting']:10s} {r['metric']:10s} "
              f"metrics.json={r['metrics.json']:.6f} recomputed={r['recomputed']:.6f}")
    print(f"{len(rows) - len(bad)}/{len(rows)} values match within {a.tol}")
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
