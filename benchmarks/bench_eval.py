"""Benchmark: full-ranking evaluation of every user in all four settings (issue 6, "Speed").

Builds a random :class:`RecData` the size of ml1m-mm (6,037 users, 3,883 items, ~575k
interactions; 10% cold-val and 10% cold-test items) and a dot-product scorer with random
dim-64 embeddings, then times :func:`graphrec.evaluation.protocol.evaluate` (phase ``test``,
settings cold/warm/hybrid/cold_full, K in 10/20/50). Target: well under 5 s on 2 CPU cores.

Run: ``python3 benchmarks/bench_eval.py [--repeats 3] [--threads 2] [--topk-dir /tmp/topk]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def make_data(num_users: int, num_items: int, num_edges: int, seed: int = 0):
    """Random split in index space, built directly as tensors (no CSV round trip)."""
    from graphrec.data.dataset import RecData

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_items, generator=g)
    n_c = num_items // 10
    cold_val, cold_test, warm = perm[:n_c], perm[n_c:2 * n_c], perm[2 * n_c:]
    # popularity-skewed items, uniform users
    u = torch.randint(num_users, (num_edges,), generator=g)
    i = torch.multinomial(torch.rand(num_items, generator=g) ** 3 + 1e-3, num_edges, replacement=True, generator=g)
    key = torch.unique(u * num_items + i)
    u, i = key // num_items, key % num_items
    kind = torch.zeros(num_items, dtype=torch.long)  # 0 warm, 1 cold-val, 2 cold-test
    kind[cold_val], kind[cold_test] = 1, 2
    r = torch.rand(u.numel(), generator=g)
    ki = kind[i]
    e = lambda m: torch.stack([u[m], i[m]])  # noqa: E731
    return RecData(
        user_ids=[str(k) for k in range(num_users)], item_ids=[str(k) for k in range(num_items)],
        train=e((ki == 0) & (r < 0.8)), val_warm=e((ki == 0) & (r >= 0.8) & (r < 0.9)),
        test_warm=e((ki == 0) & (r >= 0.9)), val_cold=e(ki == 1), test_cold=e(ki == 2),
        warm_items=torch.sort(warm).values, cold_val_items=torch.sort(cold_val).values,
        cold_test_items=torch.sort(cold_test).values)


class _Dot:
    def __init__(self, users: torch.Tensor, items: torch.Tensor) -> None:
        self.users, self.items = users, items

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.users[users] @ self.items.T  # (B, N)


def main(argv: list[str] | None = None) -> None:
    from graphrec.evaluation.protocol import evaluate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=6037)
    p.add_argument("--items", type=int, default=3883)
    p.add_argument("--edges", type=int, default=575280)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--topk-dir", default=None, help="also write top-K CSV files (timed separately)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    data = make_data(a.users, a.items, a.edges)
    print(f"data: {data.num_users} users, {data.num_items} items, train {data.train.size(1)}, "
          f"test_warm {data.test_warm.size(1)}, test_cold {data.test_cold.size(1)} "
          f"(built in {time.perf_counter() - t0:.1f}s)")
    g = torch.Generator().manual_seed(1)
    scorer = _Dot(torch.randn(a.users, a.dim, generator=g), torch.randn(a.items, a.dim, generator=g))
    t0 = time.perf_counter()
    import torch_geometric.metrics  # noqa: F401  (one-time import cost, not part of evaluation)
    print(f"import torch_geometric.metrics: {time.perf_counter() - t0:.1f}s (not timed below)")
    times, cpu = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = evaluate(scorer, data, phase="test", batch_size=a.batch_size)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"load average before/after: {load0} / {os.getloadavg()} (the machine is shared; wall times vary)")
    print(f"evaluate (4 settings, K=10/20/50, {a.threads} threads): wall best {min(times):.2f}s, median "
          f"{sorted(times)[len(times) // 2]:.2f}s, all {', '.join(f'{t:.2f}' for t in times)}s "
          f"(first call includes building the cached index structures)")
    print(f"  process CPU seconds (all threads): {', '.join(f'{t:.2f}' for t in cpu)}")
    for s, m in res.items():
        print(f"  {s:9s} users={m['n_users']:5d} recall@20={m['recall@20']:.4f} ndcg@20={m['ndcg@20']:.4f}")
    if a.topk_dir:
        t0 = time.perf_counter()
        from graphrec.evaluation.topk_io import write_topk_files

        write_topk_files(evaluate(scorer, data, phase="test", batch_size=a.batch_size), data, a.topk_dir, "random_dot")
        print(f"evaluate + writing top-50 files: {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
