"""Serving at 1M items in GraphRec's real layout: one index over the full serving width vs warm / cold blocks (issue 15).

GraphRec's serving space (``graphrec.nn.serving_space``) is ``2d + d_b + C`` wide (``C``: the cold items'
content, prior and learned-walk columns; 1,730 in all for the default model on ml1m-mm, measured
from a trained checkpoint), but a warm item uses only ``[d, 2d + d_b)`` (128 columns) and a cold one all
but ``[d, 2d)``. A synthetic catalogue in that layout (``--items``, ``--cold-share`` of them cold, unit
Gaussian blocks with a 1/j variance spectrum), users in the full width, each with ``--history`` seen items
excluded, top-``--k``:

* ``full exact``: one :class:`~graphrec.serve.index.ItemIndex` over the full width (what serving did
  before the blocked index), single-user p50/p99;
* ``blocked exact``: :class:`~graphrec.serve.blocks.BlockedIndex`, every block searched exactly
  (identical results, checked on the timed users);
* ``blocked auto``: the default (``backend="auto"``): blocks of ``ann_min_items`` items or more use HNSW
  (efSearch ``--ef-search``), smaller ones exact; build seconds, p50/p99 and recall@k against exact.

    python3 benchmarks/bench_serve_blocks.py                      # 1M items, 2% cold, single-model widths
    python3 benchmarks/bench_serve_blocks.py --items 100000 --queries 50   # quick

Writes ``benchmarks/results/serve_blocks.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphrec.serve.blocks import BlockedIndex  # noqa: E402
from graphrec.serve.index import ItemIndex  # noqa: E402


def catalogue(n: int, cold_share: float, d: int, d_b: int, extra: int, users: int, seed: int = 0):
    """Items in GraphRec's layout (warm ``[0, v, b, 0]``, cold ``[c, 0, t, x]``), users over every column."""
    g = torch.Generator().manual_seed(seed)
    width = 2 * d + d_b + extra
    n_cold = int(round(n * cold_share))
    warm_cols = torch.arange(d, 2 * d + d_b)
    cold_cols = torch.cat([torch.arange(0, d), torch.arange(2 * d, width)])

    def block(rows, cols):
        scale = torch.arange(1, cols + 1).float().pow(-0.5)
        return torch.nn.functional.normalize(torch.randn(rows, cols, generator=g) * scale, dim=1)

    emb = torch.zeros(n, width)
    for s in range(0, n - n_cold, 100_000):  # chunks: no second full-size temporary
        m = min(100_000, n - n_cold - s)
        emb[s:s + m, warm_cols] = block(m, len(warm_cols))
    emb[n - n_cold:, cold_cols] = block(n_cold, len(cold_cols))
    names = ["warm"] * (n - n_cold) + ["cold"] * n_cold
    q = block(users, width)
    return emb, names, {"warm": warm_cols, "cold": cold_cols}, q


def timed(index, q: torch.Tensor, k: int, exclude: list[list[int]]) -> tuple[dict, torch.Tensor]:
    index.search(q[:1], k, exclude[:1])  # warm-up
    times, tops = [], []
    for j in range(q.shape[0]):
        t = time.perf_counter()
        tops.append(index.search(q[j:j + 1], k, exclude[j:j + 1])[1])
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "queries": len(times)}, torch.cat(tops)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--cold-share", type=float, default=0.02, help="share of cold (or newly added) items")
    p.add_argument("--d", type=int, default=64, help="GNN width d (the serving space has 2d GNN columns)")
    p.add_argument("--d-b", type=int, default=64, help="backbone width")
    p.add_argument("--extra", type=int, default=1538, help="cold-only content / prior / walk columns (1730 - 192 on ml1m-mm)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--history", type=int, default=100)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--ann-min-items", type=int, default=200_000)
    p.add_argument("--ef-search", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_blocks.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        import faiss
        faiss.omp_set_num_threads(a.threads)
    except ImportError:
        pass
    t = time.perf_counter()
    emb, names, blocks, q = catalogue(a.items, a.cold_share, a.d, a.d_b, a.extra, a.queries)
    ids = [str(j) for j in range(a.items)]
    rng = np.random.default_rng(0)
    exclude = [rng.choice(a.items, a.history, replace=False).tolist() for _ in range(a.queries)]
    res = {"items": a.items, "cold_share": a.cold_share, "width": emb.shape[1], "warm_width": len(blocks["warm"]),
           "cold_width": len(blocks["cold"]), "k": a.k, "history": a.history, "threads": a.threads,
           "gen_s": round(time.perf_counter() - t, 1), "machine": platform.platform(), "rows": []}
    print({k: v for k, v in res.items() if k != "rows"}, flush=True)
    full = ItemIndex(ids, emb)
    row, exact_top = timed(full, q, a.k, exclude)
    res["rows"].append({"index": "full exact", **row, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    print(res["rows"][-1], flush=True)
    blk = BlockedIndex(ids, emb, blocks, names, "cold")
    row, top = timed(blk, q, a.k, exclude)
    res["rows"].append({"index": "blocked exact", **row, "same_top_k": bool(torch.equal(top, exact_top))})
    print(res["rows"][-1], flush=True)
    auto = BlockedIndex(ids, emb, blocks, names, "cold", backend="auto", ann_min_items=a.ann_min_items, ef_search=a.ef_search)
    del full, emb
    t = time.perf_counter()
    auto.build()
    build_s = time.perf_counter() - t
    row, top = timed(auto, q, a.k, exclude)
    rec = float(np.mean([len(set(x.tolist()) & set(y.tolist())) / a.k for x, y in zip(top, exact_top)]))
    res["rows"].append({"index": "blocked auto", "backend": auto.active_backend, "ef_search": a.ef_search,
                        "build_s": round(build_s, 1), **row, f"recall@{a.k}": round(rec, 4),
                        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    print(res["rows"][-1], flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
