"""Benchmark: item encoders on ml1m-mm (issue 4, "Speed").

For each enabled encoder (default config: MiniLM text, EfficientNet-Lite0 images):
1. ``full``: end-to-end encode of the whole catalogue through :func:`encode_modality` into
   ``--cache-dir`` (model loaded beforehand, so items/s excludes load time).
2. ``paired``: end-to-end ``encoder.encode`` vs. the raw model forward on pre-decoded tensors
   (pre-tokenised text) at the same batch size, on ``--subset`` items, alternating in chunks
   so both see the same machine load; target end-to-end >= 0.9x raw.
3. ``cached``: :func:`encode_items` on the now complete store (in process, and a fresh
   ``python -c`` including imports); target < 2 s in process.
Writes ``benchmarks/results/encoders.json`` and prints a table.

Run: ``python3 benchmarks/bench_encoders.py [--items runs/ml1m-mm/prepared/items.csv]
[--cache-dir DIR (default: a fresh temporary dir)] [--subset 384] [--chunk 128] [--threads 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def load_items(path: Path):
    import pandas as pd

    if path.exists():
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = ROOT.parent / "shared" / "data" / "ml1m-mm"  # before data_prep has run
    df = pd.read_csv(raw / "items.csv", dtype=str, keep_default_na=False).rename(columns={"movie_id": "item_id", "plot_text": "plot"})
    df["image_path"] = [str(raw / "images" / f"{i}.jpg") if (raw / "images" / f"{i}.jpg").exists() else "" for i in df.item_id]
    df["text"] = df["title"]
    return df


def paired(enc, items, subset: int, chunk: int) -> dict:
    """Alternate end-to-end encode and raw forward on the same chunks; returns seconds of each."""
    import torch

    sub = items.iloc[:subset].reset_index(drop=True)
    e2e = raw = 0.0
    n_e2e = n_raw = 0
    for s in range(0, len(sub), chunk):
        part = sub.iloc[s:s + chunk].reset_index(drop=True)
        # raw input prepared outside the timer
        if enc.modality == "image":
            loaded = [enc.load_one(p) for p in enc.paths(part)]
            tensors = [t for t, _, _ in loaded if t is not None]
            batches = [torch.stack(tensors[k:k + enc.batch_size]) for k in range(0, len(tensors), enc.batch_size)]
            run_raw = lambda: [enc.forward(b) for b in batches]  # noqa: E731
            n = len(tensors)
        else:
            texts = [t for t in enc.texts(part) if t]
            batches = enc.tokenize_batches(texts)
            run_raw = lambda: [enc.forward_tokens(b) for b in batches]  # noqa: E731
            n = len(texts)
        t0 = time.perf_counter()
        run_raw()
        raw += time.perf_counter() - t0
        n_raw += n
        t0 = time.perf_counter()
        res = enc.encode(part, progress=False)
        e2e += time.perf_counter() - t0
        n_e2e += int(res.mask.sum())
    return {"items": len(sub), "encoded_e2e": n_e2e, "encoded_raw": n_raw, "e2e_s": round(e2e, 3), "raw_s": round(raw, 3),
            "e2e_items_per_s": round(n_e2e / e2e, 2), "raw_items_per_s": round(n_raw / raw, 2),
            "ratio_e2e_over_raw": round((n_e2e / e2e) / (n_raw / raw), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=Path, default=ROOT / "runs" / "ml1m-mm" / "prepared" / "items.csv")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--subset", type=int, default=384)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoders.json")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from graphrec.encoders import EncodersConfig, encode_items
    from graphrec.encoders.pipeline import check_items, encode_modality, encoder_from_config, encoder_name
    from graphrec.encoders.store import FeatureStore

    if args.threads:
        torch.set_num_threads(args.threads)
    items = load_items(args.items)
    ids = check_items(items)
    cfg = EncodersConfig()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="bench_encoders_"))
    store = FeatureStore(cache)
    results: dict = {"items_file": str(args.items), "num_items": len(items), "cache_dir": str(cache),
                     "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                     "load_avg_start": os.getloadavg(), "python": platform.python_version(), "torch": torch.__version__,
                     "config": cfg.to_dict(), "encoders": {}}
    for modality in cfg.enabled:
        enc = encoder_from_config(modality, cfg, cache / ".sha256.json")
        t0 = time.perf_counter()
        _ = enc.dim  # load the model outside the timed runs
        load_s = time.perf_counter() - t0
        r: dict = {"encoder": encoder_name(modality, cfg), "batch_size": enc.batch_size, "load_s": round(load_s, 2)}
        r["paired"] = paired(enc, items, args.subset, args.chunk)
        t0 = time.perf_counter()
        feats, rep = encode_modality(items, ids, modality, enc, encoder_name(modality, cfg), store, not args.no_progress)
        full_s = time.perf_counter() - t0
        r["full"] = {"seconds": round(full_s, 2), "encoded": rep["encoded"], "with_features": rep["with_features"],
                     "items_per_s": round(rep["encoded"] / full_s, 2) if rep["encoded"] else None,
                     "cache": rep["cache"], "counts": rep["counts"]}
        r["report"] = rep
        results["encoders"][modality] = r
        print(f"{modality}: {json.dumps(r['paired'])} full {r['full']['seconds']}s", flush=True)
    t0 = time.perf_counter()
    _, rep = encode_items(items, cfg, cache, progress=False)
    results["cached_rerun_s"] = round(time.perf_counter() - t0, 3)
    results["cached_rerun_hits"] = {m: r["cache"] for m, r in rep["modalities"].items()}
    code = ("import sys,time; t=time.perf_counter(); sys.path.insert(0,%r); import pandas as pd; "
            "from graphrec.encoders import encode_items, EncodersConfig; "
            "f,r=encode_items(pd.read_csv(%r,dtype=str,keep_default_na=False), EncodersConfig(), %r, progress=False); "
            "print(time.perf_counter()-t, [v['cache'] for v in r['modalities'].values()])") % (str(ROOT), str(args.items), str(cache))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    results["cached_rerun_fresh_process_s"] = round(time.perf_counter() - t0, 3)
    results["cached_rerun_fresh_process_stdout"] = out.stdout.strip() or out.stderr.strip()[-500:]
    results["load_avg_end"] = os.getloadavg()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n{'encoder':<20}{'batch':>6}{'raw it/s':>10}{'e2e it/s':>10}{'e2e/raw':>9}{'full it/s':>11}{'full s':>8}")
    for m, r in results["encoders"].items():
        p = r["paired"]
        print(f"{r['encoder']:<20}{r['batch_size']:>6}{p['raw_items_per_s']:>10}{p['e2e_items_per_s']:>10}"
              f"{p['ratio_e2e_over_raw']:>9}{str(r['full']['items_per_s']):>11}{r['full']['seconds']:>8}")
    print(f"cached rerun: {results['cached_rerun_s']} s in process (target < 2 s), "
          f"{results['cached_rerun_fresh_process_s']} s in a fresh process incl. imports; written {args.out}")
    return results


if __name__ == "__main__":
    main()
