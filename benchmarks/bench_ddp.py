"""Data-parallel GraphRec training: seconds per epoch on 1 process vs N processes (issue 15).

Both runs train the same GraphRec (default model and objective) on the same synthetic graph with
the same seed: one process through :func:`graphrec.recipes.graphrec.train_graphrec`, and ``N``
processes through :func:`graphrec.stages.ddp.launch_train_graphrec` (torchrun, Gloo on CPU; what
``graphrec train --nproc N`` runs). Seconds per epoch are the training part of each epoch as the
loop records it (``history[*]["seconds"]``: steps + all-reduce, without validation), the mean
over the epochs after the first (warm-up); the launch's wall time (process start, imports, spec,
validation) is reported separately, with the CPU seconds each run used (all its processes): on
a shared machine two processes also get a larger share of the cores than one, so compare both.

The graph is synthetic (no 10x ml1m-mm generator exists on main): ``--users`` x ``--items``
with ``--per-user`` interactions per user drawn from a Zipf-like popularity, random 384-d text and
1280-d image features (the default encoders' sizes), a random item cold split.

Expect no speed-up from 2 processes on a 2-core machine: every rank recomputes the full-graph
propagation (only the per-batch loss work is split), each process gets one core instead of two,
and the gradients cross processes every step. The benchmark says what it measured and the load
average it ran under.

Run:
    python3 benchmarks/bench_ddp.py                          # 1 vs 2 processes, 3 epochs
    python3 benchmarks/bench_ddp.py --nproc 4 --device cuda  # on a 4-GPU machine

Writes ``benchmarks/results/ddp.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_data(users: int, items: int, per_user: int, seed: int = 0):
    """A RecData with a popularity-skewed graph, an item cold split and random features."""
    import numpy as np
    import pandas as pd
    import torch

    sys.path.insert(0, str(ROOT))
    from graphrec.data.dataset import RecData
    from graphrec.data.features import ItemFeatures

    rng = np.random.default_rng(seed)
    pop = 1.0 / (np.arange(items) + 10.0) ** 0.8
    pop /= pop.sum()
    rows = []
    for u in range(users):
        n = max(2, int(rng.poisson(per_user)))
        for i in rng.choice(items, size=min(n, items), replace=False, p=pop):
            rows.append((u, int(i)))
    edges = pd.DataFrame(rows, columns=["u", "i"])
    perm = rng.permutation(items)
    n_cold = items // 10
    kind = np.full(items, "warm", dtype=object)
    kind[perm[:n_cold]], kind[perm[n_cold:2 * n_cold]] = "val_cold", "test_cold"
    r = rng.random(len(edges))
    split = np.where(kind[edges["i"]] != "warm", kind[edges["i"]],
                     np.where(r < 0.05, "val_warm", np.where(r < 0.1, "test_warm", "train")))
    uid, iid = [f"u{u}" for u in range(users)], [f"i{i}" for i in range(items)]
    splits = {n: pd.DataFrame({"user_id": [uid[u] for u in edges["u"][split == n]],
                               "item_id": [iid[i] for i in edges["i"][split == n]]})
              for n in ("train", "val_warm", "test_warm", "val_cold", "test_cold")}
    table = pd.DataFrame({"item_id": iid, "title": iid, "text": iid, "image_path": "", "genres": ""})
    g = torch.Generator().manual_seed(seed)
    feats = {n: ItemFeatures(n, iid, torch.randn(items, d, generator=g), torch.ones(items, dtype=torch.bool), f"random-{d}")
             for n, d in (("text", 384), ("image", 1280))}
    return RecData.from_frames(splits, table, feats)


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _epoch_seconds(history: list[dict]) -> float:
    secs = [h["seconds"] for h in history if "seconds" in h]
    rest = secs[1:] or secs
    return sum(rest) / len(rest)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--items", type=int, default=1500)
    p.add_argument("--per-user", type=int, default=40)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--nproc", type=int, default=2, help="processes of the distributed run (compared with 1)")
    p.add_argument("--device", default="cpu", help="device option of both runs (cpu, cuda, auto)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the 1-process run (each distributed worker gets 1; 0 = the machine's "
                        "cores, which on a busy 2-core machine is ~10x slower than 1 from OpenMP contention)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ddp.json"))
    args = p.parse_args(argv)

    import torch

    sys.path.insert(0, str(ROOT))
    from graphrec.evaluation.protocol import make_validator
    from graphrec.nn import ModelConfig
    from graphrec.recipes.graphrec import train_graphrec
    from graphrec.stages.ddp import launch_train_graphrec
    from graphrec.training import TrainConfig

    threads = args.threads or os.cpu_count() or 1
    t0 = time.perf_counter()
    data = synthetic_data(args.users, args.items, args.per_user)
    graph = {"users": data.num_users, "items": data.num_items, "train_edges": int(data.train.shape[1]),
             "features": "random text 384-d + image 1280-d", "built_s": round(time.perf_counter() - t0, 1),
             "steps_per_epoch": -(-int(data.train.shape[1]) // args.batch_size)}
    print(f"graph: {graph}", flush=True)
    mc = ModelConfig()
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs, tensorboard=False,
                     warm_refine_epochs=0, num_threads=threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        t, c = time.perf_counter(), time.process_time()
        _, h1 = train_graphrec(data, mc, tc, Path(tmp) / "p1", make_validator(data), progress=False, device=args.device)
        rows.append({"processes": 1, "threads_per_process": threads, "sec_per_epoch": _epoch_seconds(h1),
                     "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "epochs": len(h1),
                     "best_cold_val_ndcg@20": max(h["val/cold/ndcg@20"] for h in h1)})
        print(f"1 process: {rows[-1]}", flush=True)
        t, c = time.perf_counter(), _children_cpu()
        env_before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            hn = launch_train_graphrec(data, mc, tc.replace(num_threads=1), Path(tmp) / "pn", args.nproc,
                                       device=args.device, progress=False)
        finally:
            if env_before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = env_before
        rows.append({"processes": args.nproc, "threads_per_process": 1, "sec_per_epoch": _epoch_seconds(hn),
                     "wall_s": time.perf_counter() - t, "cpu_s": _children_cpu() - c, "epochs": len(hn),
                     "best_cold_val_ndcg@20": max(h["val/cold/ndcg@20"] for h in hn)})
        print(f"{args.nproc} processes: {rows[-1]}", flush=True)
    summary = {
        "command": "python3 benchmarks/bench_ddp.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "graph": graph, "results": rows,
        "speedup_sec_per_epoch": rows[0]["sec_per_epoch"] / rows[1]["sec_per_epoch"],
        "machine": {"cpus": os.cpu_count(), "device": args.device, "torch": torch.__version__,
                    "python": sys.version.split()[0], "loadavg_at_end": list(os.getloadavg()),
                    "note": "shared machine: other jobs were running (see loadavg)"},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{'processes':>9} {'threads/proc':>12} {'s/epoch':>8} {'wall s':>7} {'CPU s':>7} {'best cold-val ndcg@20':>22}")
    for r in rows:
        print(f"{r['processes']:>9} {r['threads_per_process']:>12} {r['sec_per_epoch']:>8.2f} {r['wall_s']:>7.1f} "
              f"{r['cpu_s']:>7.1f} {r['best_cold_val_ndcg@20']:>22.4f}")
    print(f"speed-up per epoch ({args.nproc} vs 1 process): {summary['speedup_sec_per_epoch']:.2f}x; "
          f"load average at end: {summary['machine']['loadavg_at_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
