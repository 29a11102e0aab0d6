"""The learned content walk alone on one split's cold validation, without a trained GraphRec.

The walk reads only the text vectors (train-centred, normalised: the content terms' vectors at text
share 1.0, the share the calibration chose in every benchmark run), the train interactions and the
warm items, so its options can be compared before any GraphRec is trained. Fits each variant with
the library's ``graphrec.recipes.walk.fit_walk`` (selected on cold validation; test files are never read).

Run (after ``graphrec split`` and ``graphrec encode``):
    python3 benchmarks/bench_walk_bare.py --variants base codes "codes,walk_lr=0.003" "base,walk_lr=0.003"

A variant is ``base`` (the default walk) or ``codes`` (``model.walk_codes``: item codes on the user side),
optionally followed by ``,key=value`` pairs of ``train.walk_*`` options or ``view=S``: the walk reads
``[sqrt(1 - S) * text, sqrt(S) * second view]``, the second view being the same text encoder over
``--view-template`` (default: the short fields without the plot; encoded once, cached by fingerprint;
``S = 1``: the second view alone). Writes ``benchmarks/results/walk_bare.json``.

    python3 benchmarks/bench_walk_bare.py --variants base view=0.3 view=0.5 view=1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
INT_KEYS = ("walk_epochs", "walk_batch_size", "walk_eval_every", "walk_patience")
VIEW = "{title}. Genres: {genres}. Directed by {director}. Starring {actors}."


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "ml1m-mm.yaml"))
    p.add_argument("--split", default=None, help="split directory (default: <run_dir>/split)")
    p.add_argument("--variants", nargs="+", default=["base", "codes"])
    p.add_argument("--view-template", default=VIEW, help="template of the second text view (view=S variants)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from graphrec.config import load_config
    from graphrec.data import load_prepared, load_recdata
    from graphrec.encoders import encode_items
    from graphrec.evaluation.protocol import make_validator
    from graphrec.graph.build import centred_normalised
    from graphrec.nn.content_walk import LearnedWalk
    from graphrec.recipes.walk import fit_walk

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [])
    root = cfg.paths.root
    split = Path(args.split) if args.split else root / "split"
    _, items = load_prepared(root / "prepared")
    feats = encode_items(items, cfg.encoders, root / "features", progress=False)[0]
    data = load_recdata(root / "prepared", split, feats)
    val = make_validator(data, ks=(20,))
    text = data.features["text"]
    warm = torch.zeros(len(data.item_ids), dtype=torch.bool)
    warm[data.warm_items] = True

    def centred(f):
        return centred_normalised(f.x.float(), f.mask.bool(), f.x[f.mask.bool() & warm].float().mean(0))

    vec, second = centred(text), None
    rows = []
    for name in args.variants:
        kind, *opts = name.split(",")
        if "=" in kind:  # options alone: the default walk
            kind, opts = "base", [kind, *opts]
        if kind not in ("base", "codes") or any("=" not in kv for kv in opts):
            raise SystemExit(f"variant {name!r}: base or codes, then ,key=value options (or options alone)")
        opts = dict(kv.split("=") for kv in opts)
        x = vec
        if "view" in opts:
            share = float(opts.pop("view"))
            if second is None:
                vcfg = load_config(args.config, ["encoders.enabled=[text]", f"encoders.text.template={args.view_template}"])
                t = time.perf_counter()
                second = centred(encode_items(items, vcfg.encoders, root / "features", progress=False)[0]["text"])
                print(f"second view encoded in {time.perf_counter() - t:.0f} s (0 = cached)", flush=True)
            x = second if share >= 1 else torch.cat([(1 - share) ** 0.5 * vec, share ** 0.5 * second], 1)
        walk = LearnedWalk(x.shape[1], 0, cfg.model.walk_temperature, len(data.item_ids) if kind == "codes" else 0)
        walk.attach(x, data.train, len(data.user_ids))
        model = SimpleNamespace(walk=walk, warm=warm, train_edges=data.train, _eval_cache=None)
        tc = cfg.train.replace(**{k: int(v) if k in INT_KEYS else float(v) for k, v in opts.items()})
        t = time.perf_counter()
        rec = fit_walk(model, tc, val)
        rows.append({"variant": name, "start": rec["start"], "best": rec["best"], "best_epoch": rec["best_epoch"],
                     "seconds": round(time.perf_counter() - t, 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks" / "results" / "walk_bare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"split": str(split), "metric": f"cold/{cfg.train.val_metric}",
                               "view_template": args.view_template, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
