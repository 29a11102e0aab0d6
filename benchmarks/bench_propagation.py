"""The sparse part of a training step: LightGCN propagation forward + backward on a run's train graph.

Times GraphRec's :class:`~graphrec.nn.gnn.LightGCNPropagation` (the precomputed normalised adjacency,
the symmetric backward; the same product PyG's LightGCN runs in ``bench_train.py``) on random (U + I, dim)
inputs, and counts the warm items (the rows GraphRec's item tower runs on in training).

Run:
    python3 benchmarks/bench_propagation.py --threads 1      # -> benchmarks/results/propagation.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "ml1m-mm"), help="dir with prepared/ and split/")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "propagation.json"))
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from graphrec.data import load_recdata
    from graphrec.graph.build import normalized_adjacency
    from graphrec.nn.gnn import LightGCNPropagation

    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    data = load_recdata(run / "prepared", run / "split", {})
    adj = normalized_adjacency(data.train, data.num_users, data.num_items)
    prop = LightGCNPropagation(args.layers)
    x = torch.randn(data.num_users + data.num_items, args.dim, requires_grad=True)
    times = []
    for r in range(args.repeats + 1):
        t = time.perf_counter()
        prop(x, adj).sum().backward()
        if r:  # the first call is a warm-up
            times.append(time.perf_counter() - t)
    out = {"num_users": data.num_users, "num_items": data.num_items, "train_edges": int(data.train.shape[1]),
           "warm_items": int(torch.unique(data.train[1]).numel()), "dim": args.dim, "layers": args.layers,
           "threads": args.threads, "fwd_bwd_ms_median": 1000 * statistics.median(times), "fwd_bwd_ms_min": 1000 * min(times)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
