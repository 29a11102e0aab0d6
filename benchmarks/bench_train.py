"""Training speed and memory: GraphRec vs LightGCN in its efficient form, on the same graph (issue 15).

Seconds per training epoch and peak RSS, measured side by side in one run, each model in its
own subprocess (so peak RSS is that model's alone), same train graph, embedding size and batch
size. LightGCN is PyG's ``LightGCN`` (parameters, ``recommendation_loss``) propagated with a
precomputed normalised sparse adjacency and the symmetric sparse product (the efficient form,
as graphrec's LightGCN baseline and backbone train it), BPR with one negative per positive.
GraphRec runs its real training step with the default configuration (item tower over the warm
items, LightGCN propagation, content kNN cold view, the default loss terms, shared negatives), once
per ``--precisions`` value (``train.precision``: fp32, and bf16 = the forward under bfloat16 autocast
as ``fit`` runs it). LightGCN runs in float32 only: its cost is the sparse product, which has no
bfloat16 kernel on CPU.
GraphRec's whole training also fits its collaborative backbone (a LightGCN, the same cost as
the LightGCN row) and a calibration on validation; those are reported by ``graphrec train``.

Item features: ``--features store`` reads ``<run>/features`` with :func:`graphrec.encoders.encode_items`
(cache only); ``random`` uses random matrices with the default encoders' sizes (768 text,
1280 image; speed does not depend on the values); ``auto`` = store if present else random.

Run:
    python3 benchmarks/bench_train.py                      # full epochs
    python3 benchmarks/bench_train.py --max-steps 10       # quick: per-step time x steps/epoch

Writes ``benchmarks/results/train.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(args):
    import torch

    sys.path.insert(0, str(ROOT))
    from graphrec.data import ItemFeatures, load_prepared, load_recdata

    run = Path(args.run_dir)
    _, items = load_prepared(run / "prepared")
    feats, source = None, "random"
    if args.features in ("store", "auto") and (run / "features").exists():
        from graphrec.encoders import encode_items

        from graphrec.config import Config

        feats, _ = encode_items(items, Config().encoders, run / "features", progress=False)
        source = "store"
    elif args.features == "store":
        raise FileNotFoundError(f"no feature store at {run / 'features'}")
    if feats is None:
        g = torch.Generator().manual_seed(0)
        ids = [str(i) for i in items["item_id"]]
        feats = {n: ItemFeatures(n, ids, torch.randn(len(ids), d, generator=g), torch.ones(len(ids), dtype=torch.bool), f"random-{d}")
                 for n, d in (("text", 768), ("image", 1280))}
    return load_recdata(run / "prepared", run / "split", feats), source


def _child(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    data, source = _load(args)
    E = data.train.shape[1]
    steps_per_epoch = -(-E // args.batch_size)
    n = min(steps_per_epoch, args.max_steps) if args.max_steps else steps_per_epoch
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(E, generator=g)

    if args.which == "lightgcn":
        from torch_geometric.nn import LightGCN

        from graphrec.baselines.lightgcn import normalized_adjacency, propagate, train_graph

        U = data.num_users
        model = LightGCN(U + data.num_items, args.dim, args.layers)
        adj = normalized_adjacency(train_graph(data), U + data.num_items)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        warm = torch.unique(data.train[1])

        def step(idx):
            u, i = data.train[0, idx], data.train[1, idx]
            j = warm[torch.randint(len(warm), (len(idx),), generator=g)]
            emb = propagate(model, adj)
            eu, ei, ej = emb[u], emb[i + U], emb[j + U]
            loss = model.recommendation_loss((eu * ei).sum(1), (eu * ej).sum(1), node_id=torch.cat([u, i + U, j + U]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        from graphrec.config import Config
        from graphrec.recipes.graphrec import setup_graphrec
        from graphrec.training import NegativeSampler

        cfg = Config()
        mc = cfg.model.replace(dim=args.dim, num_layers=args.layers).restricted_to(data.features)
        tc = cfg.train.replace(batch_size=args.batch_size)
        t_setup = time.perf_counter()
        st = setup_graphrec(data, mc, tc)
        setup = time.perf_counter() - t_setup
        task = st.task.train()
        opt = torch.optim.Adam(task.parameters(), lr=tc.lr)
        sampler = NegativeSampler(data.train, data.num_items)

        def step(idx):
            users, pos = data.train[0, idx], data.train[1, idx]
            neg, valid = sampler.sample_shared(users, tc.num_negatives, g)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):  # as fit() does
                loss = task(users, pos, neg, valid)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()

    step(perm[: args.batch_size])  # warm-up (allocations, first-call overheads)
    t0 = time.perf_counter()
    for b in range(n):
        step(perm[b * args.batch_size : (b + 1) * args.batch_size])
    sec = time.perf_counter() - t0
    out = {
        "model": args.which, "steps_timed": n, "steps_per_epoch": steps_per_epoch,
        "sec_per_step": sec / n, "sec_per_epoch": sec / n * steps_per_epoch, "extrapolated": n < steps_per_epoch,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "features": source,
        "train_edges": E, "num_users": data.num_users, "num_items": data.num_items,
    }
    if args.which == "graphrec":
        out["setup_sec"] = setup
        out["precision"] = args.precision
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "ml1m-mm"), help="dir with prepared/, split/ (and features/)")
    p.add_argument("--features", choices=["auto", "store", "random"], default="auto")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8192, help="same for both models (GraphRec default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help="time this many steps and extrapolate (0 = a full epoch)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train.json"))
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"],
                   help="GraphRec rows: train.precision values to time (LightGCN is float32: its cost is the sparse product, "
                        "which has no bfloat16 CPU kernel)")
    p.add_argument("--which", choices=["graphrec", "lightgcn"], help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.which:
        print(json.dumps(_child(args)))
        return 0
    rows = []
    given = [a for a in (argv if argv is not None else sys.argv[1:])]
    for which, prec in [("lightgcn", "fp32")] + [("graphrec", p) for p in args.precisions]:
        cmd = [sys.executable, __file__, "--which", which, "--precision", prec] + given
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
            return res.returncode
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    lg, gr = rows[0], rows[1]
    summary = {
        "config": {k: v for k, v in vars(args).items() if k not in ("which", "out", "precision")},
        "results": rows,
        "epoch_ratio_graphrec_over_lightgcn": gr["sec_per_epoch"] / lg["sec_per_epoch"],
        "epoch_ratio_by_precision": {r["precision"]: r["sec_per_epoch"] / lg["sec_per_epoch"] for r in rows[1:]},
        "target_ratio": 1.5, "target_peak_rss_mb": 4096,
        "machine": {"cpu_threads": args.threads, "python": sys.version.split()[0],
                    "loadavg_at_end": list(__import__("os").getloadavg())},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"{'model':<15} {'s/step':>8} {'s/epoch':>9} {'steps':>6} {'peak RSS MB':>12}")
    for r in rows:
        name = r["model"] + (f" {r['precision']}" if "precision" in r else "")
        print(f"{name:<15} {r['sec_per_step']:>8.3f} {r['sec_per_epoch']:>9.1f} {r['steps_per_epoch']:>6} {r['peak_rss_mb']:>12.0f}"
              + ("  (extrapolated)" if r["extrapolated"] else ""))
    print("graphrec / lightgcn epoch time: " + ", ".join(f"{k} {v:.2f}x" for k, v in summary["epoch_ratio_by_precision"].items())
          + " (target <= 1.5x); "
          f"features: {gr['features']}; load average at end: {summary['machine']['loadavg_at_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
