"""Serving latency at ml1m-mm size and at 1M items: exact search vs faiss HNSW, and ANN recall (issue 15).

Rows:
  1. ml1m-mm size: a trained run if one exists (single model and seed ensemble), else random
     embeddings of the same shape; exact search (what ``backend="auto"`` uses there).
  2. For each serving width in ``--dims`` (128 = the single model's serving space, 384 = the
     3-seed ensemble's concatenated space; widths change with the model, hence the flag), a
     synthetic catalogue of ``--items`` items:
     - exact search: p50/p99 of ``Recommender.recommend`` for one user, batch throughput;
     - faiss HNSW (``IndexHNSWFlat``, inner product, M=``--hnsw-m``, efConstruction
       ``--ef-construction``): build seconds, then for each efSearch in ``--ef-search``: p50/p99
       and recall@k of the ANN top-k against the exact top-k for the same users (each user has
       ``--history`` random seen items, excluded by both, as in real serving).

Synthetic embeddings (``--data``): ``gaussian`` (isotropic unit vectors: no structure, the hardest
case for any ANN index), ``powerlaw`` (unit vectors of a Gaussian whose variance along direction j
falls as 1/j, the decaying spectrum learned embeddings have) or ``clustered`` (1,000 cluster centres +
noise of the same norm, users near centres: an easy case). Latency is measured one query at a time
in this process.

    python3 benchmarks/bench_serve.py                                   # 1M items, dims 128 and 384
    python3 benchmarks/bench_serve.py --items 100000 --dims 128 --ef-search 64 128   # quick
    python3 benchmarks/bench_serve.py --no-faiss                        # exact rows only

Writes ``benchmarks/results/serve_1m.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphrec.serve import ItemIndex, Recommender  # noqa: E402
from graphrec.serve.index import ANN_MIN_ITEMS  # noqa: E402


class _RandomModel:
    """Stand-in with the Recommender's model interface, for catalogues without a trained run."""

    modalities: list[str] = []
    fingerprints: dict = {}

    def __init__(self, n_users: int, n_items: int, dim: int, seed: int = 0, data: str = "gaussian",
                 clusters: int = 1000, chunk: int = 100_000):
        g = torch.Generator().manual_seed(seed)
        unit = torch.nn.functional.normalize
        if data in ("gaussian", "powerlaw"):
            # powerlaw: variance of direction j proportional to 1/j, the decaying spectrum of learned embeddings
            scale = torch.arange(1, dim + 1).float().pow(-0.5) if data == "powerlaw" else torch.ones(dim)
            self.i = torch.empty(n_items, dim)
            for s in range(0, n_items, chunk):  # chunks: no second full-size temporary
                self.i[s:s + chunk] = unit(torch.randn(min(chunk, n_items - s), dim, generator=g) * scale, dim=-1)
            self.u = unit(torch.randn(n_users, dim, generator=g) * scale, dim=-1)
        else:
            centres = unit(torch.randn(clusters, dim, generator=g), dim=-1)
            self.i = torch.empty(n_items, dim)
            for s in range(0, n_items, chunk):
                m = min(chunk, n_items - s)
                z = torch.randint(clusters, (m,), generator=g)
                self.i[s:s + m] = unit(centres[z] + unit(torch.randn(m, dim, generator=g), dim=-1), dim=-1)
            z = torch.randint(clusters, (n_users,), generator=g)
            self.u = unit(centres[z] + 0.5 * unit(torch.randn(n_users, dim, generator=g), dim=-1), dim=-1)
        self.user_ids = [str(i) for i in range(n_users)]
        self.item_ids = [str(i) for i in range(n_items)]

    def embeddings(self):
        return self.u, self.i


def latency(rec: Recommender, users: list[str], k: int, n: int, batch_users: int) -> dict:
    rec.recommend(users[:1], k)  # warm-up (and, for faiss, nothing is built here: see build_s)
    times = []
    for j in range(n):
        t = time.perf_counter()
        rec.recommend([users[j % len(users)]], k)
        times.append((time.perf_counter() - t) * 1000)
    batch = users[:batch_users]
    t = time.perf_counter()
    rec.recommend(batch, k)
    dt = time.perf_counter() - t
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "batch_users": len(batch), "batch_users_per_s": round(len(batch) / dt, 1)}


def top_positions(rec: Recommender, users: list[str], k: int, chunk: int = 50) -> torch.Tensor:
    """(len(users), k) item positions of the top-k, with each user's history excluded."""
    out = []
    for s in range(0, len(users), chunk):
        us = users[s:s + chunk]
        q = rec.user_emb[torch.tensor([rec.user_pos[u] for u in us])]
        out.append(rec.index.search(q, k, [rec._history.get(u, []) for u in us])[1])
    return torch.cat(out)


def recall_at_k(approx: torch.Tensor, exact: torch.Tensor) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / k for a, e in zip(approx, exact)]))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def small_rows(a) -> list[dict]:
    rows = []
    run = Path(a.run)
    if (run / "model" / "checkpoint.pt").exists():
        kinds = ["single"] + (["ensemble"] if (run / "ensemble.json").exists() else [])
        for kind in kinds:  # the single model and the seed ensemble (3x wider serving vectors)
            rec = Recommender.load(run, model=kind)
            label = f"ml1m-mm trained run, {kind} ({len(rec.index):,} items)"
            rows.append({"catalogue": label, "items": len(rec.index), "dim": int(rec.index.width),
                         "backend": rec.index.active_backend,
                         **latency(rec, list(rec.user_pos), a.k, a.queries, min(a.batch_users, 1000))})
            print(rows[-1], flush=True)
    else:
        for dim in a.dims:
            model = _RandomModel(6037, 3883, dim)
            rec = Recommender(model, pd.DataFrame({"item_id": model.item_ids, "title": ""}), pd.DataFrame({"user_id": [], "item_id": []}))
            rows.append({"catalogue": "ml1m-mm size, random embeddings", "items": 3883, "dim": dim,
                         "backend": rec.index.active_backend,
                         **latency(rec, list(rec.user_pos), a.k, a.queries, min(a.batch_users, 1000))})
            print(rows[-1], flush=True)
    return rows


def large_rows(a, dim: int) -> list[dict]:
    rows = []
    t = time.perf_counter()
    big = _RandomModel(max(a.queries, a.batch_users), a.items, dim, seed=1, data=a.data)
    gen_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    hist = pd.DataFrame([(u, str(i)) for u in big.user_ids for i in rng.choice(a.items, a.history, replace=False)],
                        columns=["user_id", "item_id"]) if a.history else pd.DataFrame({"user_id": [], "item_id": []})
    items = pd.DataFrame({"item_id": big.item_ids, "title": ""})
    label = f"synthetic {a.items:,} items ({a.data})"
    base = {"catalogue": label, "items": a.items, "dim": dim, "history": a.history, "k": a.k}
    rec = Recommender(big, items, hist, backend="exact")
    users = list(rec.user_pos)
    rows.append({**base, "backend": "exact", "gen_s": round(gen_s, 1), **latency(rec, users, a.k, a.queries, a.batch_users)})
    print(rows[-1], flush=True)
    if a.no_faiss:
        return rows
    t = time.perf_counter()
    exact_top = top_positions(rec, users[:a.queries], a.k)
    exact_s = time.perf_counter() - t
    # the index `graphrec recommend` builds at this size (backend auto, default threshold)
    auto = ItemIndex(big.item_ids, big.i, backend="auto", hnsw_m=a.hnsw_m, ef_construction=a.ef_construction)
    assert a.items < ANN_MIN_ITEMS or auto.active_backend.startswith("faiss-hnsw"), auto.active_backend
    rec.index = ItemIndex(big.item_ids, big.i, backend="faiss", hnsw_m=a.hnsw_m, ef_construction=a.ef_construction)
    t = time.perf_counter()
    rec.index.build()
    build_s = time.perf_counter() - t
    print(f"HNSW{a.hnsw_m} built in {build_s:.1f}s (dim {dim}, {a.items:,} items); peak RSS {rss_mb():.0f} MB", flush=True)
    for ef in a.ef_search:
        rec.index.ef_search = ef
        t = time.perf_counter()
        ann_top = top_positions(rec, users[:a.queries], a.k)
        rows.append({**base, "backend": f"faiss-hnsw{a.hnsw_m}", "ef_search": ef, "ef_construction": a.ef_construction,
                     "build_s": round(build_s, 1), f"recall@{a.k}": round(recall_at_k(ann_top, exact_top), 4),
                     "recall_queries": len(exact_top), "recall_pass_s": round(time.perf_counter() - t, 2),
                     "exact_pass_s": round(exact_s, 2), **latency(rec, users, a.k, a.queries, a.batch_users),
                     "peak_rss_mb": round(rss_mb())})
        print(rows[-1], flush=True)
    del rec, big
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/ml1m-mm", help="trained run directory (random embeddings if absent)")
    p.add_argument("--items", type=int, default=1_000_000, help="size of the synthetic large catalogue")
    p.add_argument("--dims", type=int, nargs="+", default=[128, 384],
                   help="serving widths: 128 = single model, 384 = 3-seed ensemble (the model may change: set them)")
    p.add_argument("--data", choices=["gaussian", "powerlaw", "clustered"], default="gaussian", help="synthetic embeddings")
    p.add_argument("--queries", type=int, default=200, help="single-user calls timed (and users in the recall check)")
    p.add_argument("--batch-users", type=int, default=100, help="users in the one batched call (throughput)")
    p.add_argument("--history", type=int, default=100, help="seen items per synthetic user (excluded from results)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--threads", type=int, default=0, help="torch / faiss threads (0 = leave as is)")
    p.add_argument("--skip-small", action="store_true", help="skip the ml1m-mm-size rows")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_1m.json"))
    p.add_argument("--no-faiss", action="store_true", help="skip the faiss HNSW rows (its build takes minutes at 1M items)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
        try:
            import faiss

            faiss.omp_set_num_threads(a.threads)
        except ImportError:
            pass
    t0 = time.perf_counter()
    rows = [] if a.skip_small else small_rows(a)
    for dim in a.dims:
        rows += large_rows(a, dim)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
            "loadavg_at_end": list(os.getloadavg()), "seconds": round(time.perf_counter() - t0, 1),
            "ann_min_items_default": ANN_MIN_ITEMS,
            "command": "python3 benchmarks/bench_serve.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\n{'catalogue':38} {'dim':>4} {'backend':12} {'ef':>4} {'build s':>8} {'recall':>7} {'p50 ms':>8} {'p99 ms':>8} {'users/s':>8}")
    for r in rows:
        rc = r.get(f"recall@{a.k}")
        print(f"{r['catalogue']:38} {r['dim']:>4} {r['backend']:12} {r.get('ef_search', ''):>4} {r.get('build_s', ''):>8} "
              f"{'' if rc is None else f'{rc:.3f}':>7} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['batch_users_per_s']:8.0f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
