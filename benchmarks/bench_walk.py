"""The learned content walk alone, on validation: how its options move cold-validation NDCG@20.

For each run of an existing k-fold benchmark and each variant, takes a GraphRec model an earlier
``bench_rerun.py --tag SOURCE`` run trained (default ``textw``), sets text's share in the content terms,
fits a fresh learned walk with the variant's options (``graphrec.recipes.walk.fit_walk``, the library code)
and reports its start (the plain content walk) and its best cold-validation NDCG@20. Test files are never read.

Run:
    python3 benchmarks/bench_walk.py --runs 0 2 --variants base walk_keep=0.3 walk_keep=0.7 \\
        walk_temperature=0.03 walk_lr=0.001 walk_dim=256

A variant is ``base`` or comma-separated ``key=value`` pairs: ``train.walk_*`` options, ``walk_dim`` /
``walk_temperature`` / ``walk_codes`` (model options; ``walk_codes=1`` = item codes) and ``share`` (text's share, default 1.0). Writes
``benchmarks/results/walk_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_KEYS = ("walk_dim", "walk_temperature", "walk_codes", "share")


def _parse(v: str) -> dict[str, float]:
    return {} if v == "base" else {k: float(x) for k, x in (kv.split("=") for kv in v.split(","))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default=str(ROOT / "runs" / "ml1m-mm" / "benchmark"))
    p.add_argument("--data-root", default=str(ROOT / "runs" / "ml1m-mm"))
    p.add_argument("--source", default="/tmp/graphrec_rerun/textw", help="models of an earlier bench_rerun tag")
    p.add_argument("--runs", type=int, nargs="+", default=[0, 2])
    p.add_argument("--variants", nargs="+", default=["base"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from graphrec.config import load_config
    from graphrec.data import load_prepared, load_recdata
    from graphrec.encoders import encode_items
    from graphrec.evaluation.protocol import make_validator
    from graphrec.recipes.walk import fit_walk
    from graphrec.training.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    root, bench = Path(args.data_root), Path(args.benchmark)
    _, items = load_prepared(root / "prepared")
    feats, rows = None, []
    for r in args.runs:
        cfg = load_config(bench / f"run{r}" / "config.yaml", [])
        feats = feats or encode_items(items, cfg.encoders, root / "features", progress=False)[0]
        data = load_recdata(root / "prepared", bench / f"run{r}" / "split", feats)
        val = make_validator(data, ks=(20,))
        for name in args.variants:
            v = _parse(name)
            m = load_checkpoint(Path(args.source) / f"run{r}" / "checkpoint.pt")
            m.set_content_text_weight(v.get("share", 1.0))
            m.reset_walk(int(v.get("walk_dim", 0)), v.get("walk_temperature", 0.05), bool(v.get("walk_codes", 0)))
            train_opts = {k: (int(x) if k in ("walk_epochs", "walk_batch_size", "walk_eval_every", "walk_patience") else x)
                          for k, x in v.items() if k not in MODEL_KEYS}
            t = time.perf_counter()
            rec = fit_walk(m, cfg.train.replace(seed=cfg.suite.seeds[0], **train_opts), val)
            rows.append({"run": r, "variant": name, "start": rec["start"], "best": rec["best"],
                         "best_epoch": rec["best_epoch"], "seconds": time.perf_counter() - t})
            print(f"run {r} {name}: cold-val ndcg@20 start {rec['start']:.4f} best {rec['best']:.4f} "
                  f"(epoch {rec['best_epoch']}, {rows[-1]['seconds']:.0f} s)", flush=True)
    out = ROOT / "benchmarks" / "results" / "walk_variants.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"source": args.source, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
