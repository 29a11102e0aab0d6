"""Serving latency and throughput: p50/p99 of recommend for one user, throughput for a batch.

Two catalogues: ml1m-mm size (a trained run if one exists, else random embeddings of the same
shape) and a synthetic catalogue of 1M items (exact search and, if faiss is installed, a faiss
HNSW index). Writes benchmarks/results/serve.json and prints a table.

    python3 benchmarks/bench_serve.py [--run runs/ml1m-mm] [--items 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.serve import ItemIndex, Recommender


class _RandomModel:
    """Stand-in with the Recommender's model interface, for catalogues without a trained run."""

    modalities: list[str] = []
    fingerprints: dict = {}

    def __init__(self, n_users: int, n_items: int, dim: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.u = torch.nn.functional.normalize(torch.randn(n_users, dim, generator=g), dim=-1)
        self.i = torch.nn.functional.normalize(torch.randn(n_items, dim, generator=g), dim=-1)
        self.user_ids = [str(i) for i in range(n_users)]
        self.item_ids = [str(i) for i in range(n_items)]

    def embeddings(self):
        return self.u, self.i


def latency(rec: Recommender, users: list[str], k: int, n: int) -> dict:
    rec.recommend(users[:1], k)  # warm-up
    times = []
    for j in range(n):
        t = time.perf_counter()
        rec.recommend([users[j % len(users)]], k)
        times.append((time.perf_counter() - t) * 1000)
    batch = users[:1000]
    t = time.perf_counter()
    rec.recommend(batch, k)
    dt = time.perf_counter() - t
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "batch_users": len(batch), "batch_users_per_s": len(batch) / dt}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/ml1m-mm", help="trained run directory (random embeddings if absent)")
    p.add_argument("--items", type=int, default=1_000_000, help="size of the synthetic large catalogue")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results/serve.json")
    p.add_argument("--no-faiss", action="store_true", help="skip the faiss HNSW rows (its build takes minutes at 1M items)")
    a = p.parse_args(argv)
    rows = []
    run = Path(a.run)
    if (run / "model" / "checkpoint.pt").exists():
        kinds = ["single"] + (["ensemble"] if (run / "ensemble.json").exists() else [])
        for kind in kinds:  # the single model and the seed ensemble (3x wider serving vectors)
            rec = Recommender.load(run, model=kind)
            label = f"ml1m-mm trained run, {kind} ({len(rec.index):,} items, dim {rec.index.emb.shape[1]})"
            rows.append({"catalogue": label, "backend": "exact", **latency(rec, list(rec.user_pos), a.k, a.queries)})
            print(f"{rows[-1]}")
    else:
        model = _RandomModel(6037, 3883, a.dim)
        rec = Recommender(model, pd.DataFrame({"item_id": model.item_ids, "title": ""}), pd.DataFrame({"user_id": [], "item_id": []}))
        label = "ml1m-mm size, random embeddings (3,883 items)"
        rows.append({"catalogue": label, "backend": "exact", **latency(rec, list(rec.user_pos), a.k, a.queries)})
        print(f"{rows[-1]}")
    big = _RandomModel(10_000, a.items, a.dim, seed=1)
    items = pd.DataFrame({"item_id": big.item_ids, "title": ""})
    hist = pd.DataFrame({"user_id": [], "item_id": []})
    rec = Recommender(big, items, hist)
    rows.append({"catalogue": f"synthetic {a.items:,} items", "backend": "exact", **latency(rec, list(rec.user_pos), a.k, a.queries)})
    print(f"{rows[-1]}")
    try:
        if a.no_faiss:
            raise ImportError("skipped (--no-faiss)")
        import faiss  # noqa: F401

        t = time.perf_counter()
        rec.index = ItemIndex(big.item_ids, big.i, backend="faiss", hnsw_m=32)
        rec.index._faiss_index()
        build = time.perf_counter() - t
        rows.append({"catalogue": f"synthetic {a.items:,} items", "backend": "faiss-hnsw32", "build_s": build,
                     **latency(rec, list(rec.user_pos), a.k, a.queries)})
        print(f"{rows[-1]}")
    except ImportError:
        rows.append({"catalogue": f"synthetic {a.items:,} items", "backend": "faiss",
                     "note": "skipped (--no-faiss)" if a.no_faiss else "faiss not installed"})
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "command": "python3 benchmarks/bench_serve.py " + " ".join(argv or [])}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\n{'catalogue':45} {'backend':14} {'p50 ms':>8} {'p99 ms':>8} {'users/s (batch)':>16}")
    for r in rows:
        if "p50_ms" in r:
            print(f"{r['catalogue']:45} {r['backend']:14} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['batch_users_per_s']:16.0f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
