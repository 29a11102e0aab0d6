"""bfloat16 vs float32: what ``train.precision`` and ``encoders.text.precision`` change, measured (issue 15).

1. Training: GraphRec's GNN stage (default configuration, ``train_graphrec`` with early stopping on cold
   validation) once per precision on a run's split, one torch thread each, the two trainings side by side in
   two processes: seconds per epoch, epochs, and the best validation metrics (cold and warm).
2. Encoding (``--encode``): the configured text encoder (default all-mpnet-base-v2) encodes every item in
   bfloat16 into a fresh feature store (timed, ``--encode-threads`` torch threads), compared with the run's
   cached float32 features (cosine per item), then content kNN and knn_pop (default parameters) on the run's
   split with each text feature set (cold validation). Needs the float32 features cached in ``<run>/features``.

3. Encoding speed side by side (``--encode-sample N``): the first N items encoded in float32 and in bfloat16
   (fresh stores, same threads, one after the other).

Run:
    python3 benchmarks/bench_precision.py                 # training only (~2 min on ml1m-mm)
    python3 benchmarks/bench_precision.py --encode        # + bf16 encoding of the catalogue (~10 min for mpnet)
    python3 benchmarks/bench_precision.py --no-train --encode-sample 512   # fp32 vs bf16 encoding time only

Writes ``benchmarks/results/precision.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _data(run: Path, feats=None):
    from graphrec.config import Config
    from graphrec.data import load_prepared, load_recdata
    from graphrec.encoders import encode_items

    if feats is None:
        _, items = load_prepared(run / "prepared")
        feats, _ = encode_items(items, Config().encoders, run / "features", progress=False)
    return load_recdata(run / "prepared", run / "split", feats)


def _train_child(run: Path, precision: str, seed: int) -> dict:
    import torch

    from graphrec.config import Config
    from graphrec.evaluation.protocol import make_validator
    from graphrec.recipes.graphrec import train_graphrec

    torch.set_num_threads(1)
    data = _data(run)
    cfg = Config()
    mc = cfg.model.restricted_to(data.features)
    tc = cfg.train.replace(precision=precision, num_threads=1, tensorboard=False, seed=seed)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        _, hist = train_graphrec(data, mc, tc, out, make_validator(data, ks=(20,)), progress=False)
        wall = time.perf_counter() - t
    key = f"val/{tc.val_setting}/{tc.val_metric}"
    best = max(hist, key=lambda r: r.get(key, float("-inf")))
    return {"precision": precision, "seed": seed, "wall_s": wall, "epochs_run": len(hist), "best_epoch": best["epoch"],
            "sec_per_epoch": sum(r["seconds"] for r in hist) / len(hist),
            "best": {k: v for k, v in best.items() if k.startswith("val/") and "@20" in k}}


def _encode(run: Path, threads: int) -> dict:
    import torch

    from graphrec.baselines import fit_baseline
    from graphrec.config import Config
    from graphrec.data import load_prepared
    from graphrec.encoders import EncodersConfig, encode_items
    from graphrec.evaluation.protocol import make_validator

    torch.set_num_threads(threads)
    _, items = load_prepared(run / "prepared")
    cfg = Config().encoders
    f32, _ = encode_items(items, cfg, run / "features", progress=False)
    c16 = EncodersConfig.from_dict({**cfg.to_dict(), "enabled": ["text"], "text": {**cfg.text.to_dict(), "precision": "bf16"}})
    with tempfile.TemporaryDirectory() as store:
        t = time.perf_counter()
        f16, _ = encode_items(items, c16, store, progress=False)
        seconds = time.perf_counter() - t
    cos = torch.nn.functional.cosine_similarity(f32["text"].x, f16["text"].x, dim=1)
    out = {"encoder": cfg.text.name, "items": len(cos), "threads": threads, "bf16_encode_seconds": seconds,
           "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()), "val_cold": {}}
    for name, feats in (("fp32", f32), ("bf16", {**f32, "text": f16["text"]})):
        data = _data(run, feats)
        val = make_validator(data, ks=(20,))
        for bl in ("content_knn", "knn_pop"):
            m = val(fit_baseline(bl, data, None, 0, val, progress=False), ("cold",))
            out["val_cold"][f"{name}/{bl}"] = {"recall@20": m["cold/recall@20"], "ndcg@20": m["cold/ndcg@20"]}
    return out


def _encode_sample(run: Path, n: int, threads: int) -> dict:
    import torch

    from graphrec.config import Config
    from graphrec.data import load_prepared
    from graphrec.encoders import EncodersConfig, encode_items

    torch.set_num_threads(threads)
    _, items = load_prepared(run / "prepared")
    items = items.iloc[:n]
    cfg = Config().encoders
    out = {"encoder": cfg.text.name, "items": len(items), "threads": threads}
    for prec in ("fp32", "bf16"):
        c = EncodersConfig.from_dict({**cfg.to_dict(), "enabled": ["text"], "text": {**cfg.text.to_dict(), "precision": prec}})
        with tempfile.TemporaryDirectory() as store:
            encode_items(items.iloc[:4], c, store, progress=False)  # model load and first-call overheads
        with tempfile.TemporaryDirectory() as store:
            t = time.perf_counter()
            encode_items(items, c, store, progress=False)
            out[f"{prec}_seconds"] = time.perf_counter() - t
    out["speedup"] = out["fp32_seconds"] / out["bf16_seconds"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "ml1m-mm"), help="dir with prepared/, split/, features/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encode", action="store_true", help="also time bf16 text encoding and compare the features")
    p.add_argument("--encode-threads", type=int, default=2)
    p.add_argument("--encode-sample", type=int, default=0, help="also time fp32 vs bf16 encoding of the first N items")
    p.add_argument("--no-train", action="store_true", help="skip the training comparison")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision.json"))
    p.add_argument("--child", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    run = Path(args.run_dir)
    if args.child:
        print(json.dumps(_train_child(run, args.child, args.seed)))
        return 0
    procs = {} if args.no_train else {pr: subprocess.Popen([sys.executable, __file__, "--child", pr, "--run-dir", str(run), "--seed", str(args.seed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for pr in ("fp32", "bf16")}
    train = {}
    for pr, proc in procs.items():
        so, se = proc.communicate()
        if proc.returncode != 0:
            print(se[-3000:], file=sys.stderr)
            return proc.returncode
        train[pr] = json.loads(so.strip().splitlines()[-1])
    out_path = Path(args.out)
    summary = json.loads(out_path.read_text()) if out_path.exists() else {}  # sections not rerun are kept
    summary["run_dir"] = str(run)
    if train:
        summary["train"] = train
    for pr, r in train.items():
        print(f"train {pr}: {r['sec_per_epoch']:.1f} s/epoch, {r['epochs_run']} epochs (best {r['best_epoch']}), "
              + ", ".join(f"{k[4:]} {v:.4f}" for k, v in r["best"].items() if "recall" in k or "ndcg" in k))
    if args.encode:
        enc = summary["encode"] = _encode(run, args.encode_threads)
        print(f"encode {enc['encoder']} bf16: {enc['bf16_encode_seconds']:.0f} s for {enc['items']} items "
              f"({enc['threads']} threads); cosine to fp32 min {enc['cosine_min']:.5f} mean {enc['cosine_mean']:.6f}")
        for k, v in enc["val_cold"].items():
            print(f"  {k}: cold-val recall@20 {v['recall@20']:.4f} ndcg@20 {v['ndcg@20']:.4f}")
    if args.encode_sample:
        es = summary["encode_sample"] = _encode_sample(run, args.encode_sample, args.encode_threads)
        print(f"encode {es['encoder']} {es['items']} items ({es['threads']} threads): fp32 {es['fp32_seconds']:.1f} s, "
              f"bf16 {es['bf16_seconds']:.1f} s ({es['speedup']:.2f}x)")
    summary["loadavg_at_end"] = list(__import__("os").getloadavg())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
