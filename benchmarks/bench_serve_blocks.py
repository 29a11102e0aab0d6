"""Serving at 1M items in GraphRec's real layout: one index over the full serving width vs warm / cold blocks (issue 15).

GraphRec's serving space (``graphrec.nn.serving_space``) is ``2d + d_b + C`` wide (``C``: the cold items'
content, prior and learned-walk columns; 1,730 in all for the default model on ml1m-mm, measured
from a trained checkpoint), but a warm item uses only ``[d, 2d + d_b)`` (128 columns) and a cold one all
but ``[d, 2d)``. A synthetic catalogue in that layout (``--items``, ``--cold-share`` of them cold, unit
Gaussian blocks with a 1/j variance spectrum), users in the full width, each with ``--history`` seen items
excluded, top-``--k``. ``--members 3`` gives the 3-seed ensemble's layout (3,652 columns: each member's own
1,730 - 769, then the 769 content columns they share; 384 warm columns, 3,460 cold). The blocks are generated
and indexed in their own columns (``BlockedIndex.from_blocks``): the full-width matrix is formed only for the
``full exact`` row, and only when it fits ``--full-max-gb``.

* ``blocked exact``: :class:`~graphrec.serve.blocks.BlockedIndex`, every block searched exactly (the reference:
  identical to one full-width index, tested, and checked on the timed users when ``full exact`` runs);
* ``full exact``: one :class:`~graphrec.serve.index.ItemIndex` over the full width (what serving did
  before the blocked index), single-user p50/p99;
* ``blocked auto``: the default (``backend="auto"``): blocks of ``ann_min_items`` items or more use HNSW
  (efSearch ``--ef-search``), smaller ones exact; build seconds, p50/p99 and recall@k against exact.

    python3 benchmarks/bench_serve_blocks.py                      # 1M items, 2% cold, single-model widths
    python3 benchmarks/bench_serve_blocks.py --members 3 --out benchmarks/results/serve_blocks_ensemble.json
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


def layout(d: int, d_b: int, extra: int, members: int, shared: int) -> tuple[int, dict[str, torch.Tensor]]:
    """GraphRec's serving columns: per member ``[cold view d, warm v d, backbone d_b, own extra]``, then (an
    ensemble) the ``shared`` content columns all members read. Warm items use ``[d, 2d + d_b)`` of each member,
    cold ones everything but ``[d, 2d)``. Returns the width and ``{"warm": cols, "cold": cols}``."""
    shared = shared if members > 1 else 0
    own = 2 * d + d_b + extra - shared
    warm = torch.zeros(members * own + shared, dtype=torch.bool)
    warm_only = torch.zeros_like(warm)
    for m in range(members):
        warm[m * own + d:m * own + 2 * d + d_b] = True
        warm_only[m * own + d:m * own + 2 * d] = True
    return len(warm), {"warm": warm.nonzero().squeeze(1), "cold": (~warm_only).nonzero().squeeze(1)}


def catalogue(n: int, cold_share: float, blocks: dict[str, torch.Tensor], width: int, users: int, seed: int = 0):
    """Each block's items in the block's own columns (unit Gaussian rows with a 1/j variance spectrum; the
    full-width matrix is not formed), users over every column."""
    g = torch.Generator().manual_seed(seed)
    n_cold = int(round(n * cold_share))

    def block(rows, cols):
        scale = torch.arange(1, cols + 1).float().pow(-0.5)
        out = torch.empty(rows, cols)
        for s in range(0, rows, 100_000):  # chunks: no second full-size temporary
            m = min(100_000, rows - s)
            out[s:s + m] = torch.nn.functional.normalize(torch.randn(m, cols, generator=g) * scale, dim=1)
        return out

    parts = {"warm": ([str(j) for j in range(n - n_cold)], block(n - n_cold, len(blocks["warm"]))),
             "cold": ([str(j) for j in range(n - n_cold, n)], block(n_cold, len(blocks["cold"])))}
    return parts, block(users, width)


def full_width(parts, blocks, width: int) -> torch.Tensor:
    emb = torch.zeros(sum(len(i) for i, _ in parts.values()), width)
    o = 0
    for b, (ids, sub) in parts.items():
        emb[o:o + len(ids), blocks[b]] = sub
        o += len(ids)
    return emb


def rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


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
    p.add_argument("--members", type=int, default=1, help="ensemble members (3: the 3-seed ensemble's layout)")
    p.add_argument("--shared", type=int, default=769,
                   help="an ensemble's content columns shared by all members (769 on ml1m-mm: 3 x 1730 - 2 x 769 = 3652)")
    p.add_argument("--full-max-gb", type=float, default=8.0, help="skip the full-width exact index above this size")
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
    width, blocks = layout(a.d, a.d_b, a.extra, a.members, a.shared)
    parts, q = catalogue(a.items, a.cold_share, blocks, width, a.queries)
    rng = np.random.default_rng(0)
    exclude = [rng.choice(a.items, a.history, replace=False).tolist() for _ in range(a.queries)]
    full_gb = a.items * width * 4 / 1e9
    res = {"items": a.items, "cold_share": a.cold_share, "members": a.members, "width": width,
           "warm_width": len(blocks["warm"]), "cold_width": len(blocks["cold"]), "k": a.k, "history": a.history,
           "threads": a.threads, "gen_s": round(time.perf_counter() - t, 1), "machine": platform.platform(), "rows": []}
    print({k: v for k, v in res.items() if k != "rows"}, flush=True)
    blk = BlockedIndex.from_blocks(width, blocks, parts, "cold")
    row, exact_top = timed(blk, q, a.k, exclude)
    res["rows"].append({"index": "blocked exact", **row, "peak_rss_mb": rss_mb()})
    print(res["rows"][-1], flush=True)
    if full_gb <= a.full_max_gb:
        full = ItemIndex(blk.item_ids, full_width(parts, blocks, width))
        row, top = timed(full, q, a.k, exclude)
        res["rows"].append({"index": "full exact", **row, "same_top_k_as_blocked": bool(torch.equal(top, exact_top)),
                            "peak_rss_mb": rss_mb()})
        del full
    else:
        res["rows"].append({"index": "full exact", "skipped": f"the full-width matrix would be {full_gb:.1f} GB "
                            f"(--full-max-gb {a.full_max_gb}); blocked exact is the reference (equal results, tested)"})
    print(res["rows"][-1], flush=True)
    auto = BlockedIndex.from_blocks(width, blocks, parts, "cold", backend="auto", ann_min_items=a.ann_min_items,
                                    ef_search=a.ef_search)
    t = time.perf_counter()
    auto.build()
    build_s = time.perf_counter() - t
    row, top = timed(auto, q, a.k, exclude)
    rec = float(np.mean([len(set(x.tolist()) & set(y.tolist())) / a.k for x, y in zip(top, exact_top)]))
    res["rows"].append({"index": "blocked auto", "backend": auto.active_backend, "ef_search": a.ef_search,
                        "build_s": round(build_s, 1), **row, f"recall@{a.k}_vs_exact": round(rec, 4),
                        "peak_rss_mb": rss_mb()})
    print(res["rows"][-1], flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
