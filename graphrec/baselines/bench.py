"""Tune every baseline on a prepared split and print validation numbers (no test data read).

Usage::

    python3 -m graphrec.baselines.bench --prepared runs/ml1m-mm/prepared \\
        --split runs/ml1m-mm/split --features runs/ml1m-mm/features --out runs/ml1m-mm/baselines_val.json

``--features`` is the encoders' feature store (``graphrec.encoders.encode_items`` with the
default encoder config; cached files are reused, missing ones would be computed).
``--fake-features`` uses seeded random features of the same sizes instead (timing only).
Writes the tuning record (chosen params, every trial, seconds) and cold/warm validation
NDCG@20 / Recall@20 of each tuned baseline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def load(prepared: str, split: str, features: str | None, fake: bool):
    from graphrec.data import load_recdata
    from graphrec.data.features import ItemFeatures
    from graphrec.data.tables import load_prepared

    _, items = load_prepared(prepared)
    if fake:
        ids = [str(i) for i in items["item_id"]]
        g = torch.Generator().manual_seed(0)
        feats = {n: ItemFeatures(n, ids, torch.randn(len(ids), d, generator=g), torch.ones(len(ids), dtype=torch.bool))
                 for n, d in (("text", 384), ("image", 1280))}
    else:
        from graphrec.encoders.pipeline import encode_items

        feats, _ = encode_items(items, cache_dir=features)
    return load_recdata(prepared, split, feats)


def main(argv: list[str] | None = None) -> dict:
    from graphrec.baselines.config import BaselinesConfig
    from graphrec.baselines.tune import summary, tune_all
    from graphrec.evaluation.protocol import evaluate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", default="runs/ml1m-mm/prepared")
    ap.add_argument("--split", default="runs/ml1m-mm/split")
    ap.add_argument("--features", default="runs/ml1m-mm/features")
    ap.add_argument("--fake-features", action="store_true")
    ap.add_argument("--config", help="YAML BaselinesConfig")
    ap.add_argument("--names", nargs="*", help="subset of baselines")
    ap.add_argument("--out", help="JSON output path")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cfg = BaselinesConfig.load_yaml(a.config) if a.config else BaselinesConfig()
    if a.names:
        cfg = cfg.replace(names=a.names)
    if a.no_progress:
        cfg = cfg.replace(progress=False)
    data = load(a.prepared, a.split, a.features, a.fake_features)
    t0 = time.time()
    res = tune_all(data, cfg)
    out = {"seconds_total": round(time.time() - t0, 1), "tuning": summary(res), "validation": {}}
    for name, r in res.items():
        settings = ("cold", "warm", "hybrid", "cold_full") if r["supports_cold"] else ("warm",)
        ev = evaluate(r["scorer"], data, phase="val", settings=settings, ks=(20,))
        out["validation"][name] = {s: {m: ev[s][m] for m in ("ndcg@20", "recall@20")} for s in settings if s in ev}
        print(name, json.dumps(out["validation"][name]), f"params={r['params']}", f"{r['seconds']}s", flush=True)
    print(f"total {out['seconds_total']}s")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
