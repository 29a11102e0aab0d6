"""Ablation of the training objectives: what each self-supervised / auxiliary term is worth.

Variants are cumulative (each adds to the previous one), as listed in issue 8:

===============  ==============================================================================
``lp``           link prediction alone (``rec`` + ``cold_rec`` ranking losses, L2 ``reg``)
``+infonce``     + cross-modal InfoNCE (``align``: modality view vs collaborative view; ``modal``:
                 text view vs image view)
``+barlow``      + Barlow Twins (two history-subset set views of users; two augmented content
                 views of items)
``+aux``         + masked genre prediction (text view hidden) and frozen-feature reconstruction
``+consist``     + training-time modality dropout / feature noise and the consistency loss
``+dynamic``     + validation-driven loss weighting (:mod:`graphrec.training.weighting`)
===============  ==============================================================================

Each variant is trained with every seed; the model selected by early stopping on validation is
evaluated once on test in the cold / warm / hybrid settings (Recall@20, NDCG@20), plus cold
Recall@20 / NDCG@20 with the image removed and with the text removed from the cold items
(:func:`graphrec.evaluation.missing.missing_modality_eval`). ``ablation.json`` holds every number (per seed, per-user
bootstrap CIs per seed, across-seed means and Student-t CIs); ``ablation.md`` is the table.
The recommended variant is chosen on **validation** cold NDCG@20 only (never on test).

Command::

    python -m graphrec.ablation --config configs/ml1m-mm.yaml --seeds 0 1 2 [--epochs 8]

(the lead wires it as ``graphrec ablation``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import torch

#: Cumulative variants: name -> overrides of the ``train`` section added at that step.
VARIANTS: dict[str, dict[str, Any]] = {
    "lp": {"loss_weights.align": 0.0, "loss_weights.modal": 0.0},
    "+infonce": {"loss_weights.align": 0.1, "loss_weights.modal": 0.05},
    "+barlow": {"loss_weights.barlow": 0.05},
    "+aux": {"loss_weights.genre": 0.1, "loss_weights.recon": 0.1},
    "+consist": {"loss_weights.consist": 0.1, "modality_dropout": 0.1, "feature_noise": 0.05},
    "+dynamic": {"loss_weighting": "validation"},
}
#: Train-section values every variant starts from (the SSL terms off).
BASE: dict[str, Any] = {"loss_weights.barlow": 0.0, "loss_weights.genre": 0.0, "loss_weights.recon": 0.0,
                        "loss_weights.consist": 0.0, "modality_dropout": 0.0, "feature_noise": 0.0,
                        "loss_weighting": "fixed"}

SETTINGS = ("cold", "warm", "hybrid")
TABLE_METRICS = ("recall@20", "ndcg@20")


def variant_overrides(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Cumulative train-section overrides of each requested variant (in :data:`VARIANTS` order)."""
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variant(s) {unknown}; known: {list(VARIANTS)}")
    out, acc = {}, dict(BASE)
    for name, ov in VARIANTS.items():
        acc.update(ov)
        if name in names:
            out[name] = dict(acc)
    return out


def apply_train_overrides(train_cfg, overrides: dict[str, Any]):
    """A new TrainConfig with dotted overrides (``loss_weights.barlow`` edits one dict entry)."""
    data = train_cfg.to_dict()
    for k, v in overrides.items():
        if k.startswith("loss_weights."):
            data["loss_weights"] = {**data["loss_weights"], k.split(".", 1)[1]: v}
        else:
            if k not in data:
                raise KeyError(f"ablation override {k!r} is not a train config key")
            data[k] = v
    return type(train_cfg).from_dict(data)


def run_one(data, model_cfg, train_cfg, out_dir: Path, progress: bool = False, bootstrap: int = 1000) -> dict[str, Any]:
    """Train one (variant, seed), evaluate on validation and test, save ``result.json``."""
    from graphrec.evaluation.missing import missing_modality_eval
    from graphrec.evaluation.protocol import evaluate, make_validator
    from graphrec.evaluation.stats import bootstrap_result
    from graphrec.recipes.graphrec import train_graphrec

    t0 = time.perf_counter()
    k = int(train_cfg.val_metric.split("@")[1])
    model, history = train_graphrec(data, model_cfg, train_cfg, out_dir, make_validator(data, ks=(20, k)), progress=progress)
    train_s = time.perf_counter() - t0
    val = evaluate(model, data, phase="val", settings=SETTINGS, ks=(20,))
    test = evaluate(model, data, phase="test", settings=SETTINGS, ks=(20,), per_user=True)
    missing = missing_modality_eval(model, data, "test", ks=(20,)) if len(model.modalities) > 1 else {}
    epochs = [h for h in history if "epoch" in h]
    res = {
        "val": val.as_dict(), "test": test.as_dict(), "missing_modality": missing,
        "test_bootstrap": bootstrap_result(test.per_user, samples=bootstrap, metrics=list(TABLE_METRICS)) if bootstrap else {},
        "epochs": len(epochs), "train_seconds": round(train_s, 1),
        "final_weights": next((h["weights"] for h in reversed(history) if "weights" in h), None),
    }
    (out_dir / "result.json").write_text(json.dumps(res, indent=1))
    return res


def _fmt(agg: dict[str, float] | None) -> str:
    if not agg:
        return "n/a"
    half = (agg["hi"] - agg["lo"]) / 2
    return f"{agg['mean']:.4f} ± {half:.4f}"


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Across-seed means and Student-t 95% CIs; the variant chosen on validation cold NDCG@20."""
    from graphrec.evaluation.stats import aggregate_seeds

    summary: dict[str, Any] = {}
    for name, runs in results.items():
        if not runs:
            continue
        test = aggregate_seeds([r["test"] for r in runs])
        val = aggregate_seeds([r["val"] for r in runs])
        miss = aggregate_seeds([r["missing_modality"] for r in runs]) if all(r["missing_modality"] for r in runs) else {}
        summary[name] = {"test": test, "val": val, "missing_modality": miss, "n_seeds": len(runs)}
    scored = {n: s["val"].get("cold", {}).get("ndcg@20", {}).get("mean") for n, s in summary.items()}
    scored = {n: v for n, v in scored.items() if v is not None}
    best = max(scored, key=scored.get) if scored else None
    return {"variants": summary, "selected_on_validation": best, "val_cold_ndcg@20": scored}


def write_table(summary: dict[str, Any], path: Path, header: str = "") -> Path:
    """``ablation.md``: test metrics (mean ± t-CI half-width over seeds) and the validation column."""
    cols = [(s, m) for s in SETTINGS for m in TABLE_METRICS]
    mods = sorted({k for v in summary["variants"].values() for k in v["missing_modality"] if k != "both"})
    lines = [header.strip(), ""] if header else []
    head = ["variant", "seeds", "val cold NDCG@20"] + [f"{s} {m.replace('recall', 'R').replace('ndcg', 'N')}" for s, m in cols]
    head += [f"cold R@20 {m.replace('_', ' ')}" for m in mods]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, v in summary["variants"].items():
        row = [f"`{name}`" + (" **(selected)**" if name == summary["selected_on_validation"] else ""), str(v["n_seeds"]),
               _fmt(v["val"].get("cold", {}).get("ndcg@20"))]
        row += [_fmt(v["test"].get(s, {}).get(m)) for s, m in cols]
        row += [_fmt(v["missing_modality"].get(m, {}).get("recall@20")) for m in mods]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Cells: mean ± half-width of the Student-t 95% interval over seeds (test phase, full ranking). "
              "Selection uses the validation column only. Per-seed user-bootstrap CIs are in ablation.json."]
    path.write_text("\n".join(lines) + "\n")
    return path


def same_run_config(stored: str, current: str, model_cfg, train_cfg) -> bool:
    """Whether a stored ``ablation_key.json`` describes the run ``current`` would train.

    Options added to the configs after the stored run are ignored when they hold their default
    value (the default reproduces the earlier behaviour), so an ablation interrupted across an
    upgrade that added options continues instead of retraining everything.
    """
    old, new = json.loads(stored), json.loads(current)
    defaults = {"model": type(model_cfg)().to_dict(), "train": type(train_cfg)().to_dict()}
    for section in ("model", "train"):
        a, b = old.get(section, {}), new.get(section, {})
        b = {k: v for k, v in b.items() if k in a or v != defaults[section].get(k, object())}
        if a != b:
            return False
    return set(old) == set(new)


def run_ablation(data, model_cfg, train_cfg, out_dir: str | Path, variants: Sequence[str] = tuple(VARIANTS),
                 seeds: Sequence[int] = (0, 1, 2), progress: bool = False, bootstrap: int = 1000,
                 log=print, header: str = "") -> dict[str, Any]:
    """Train and evaluate every (variant, seed); write ``ablation.json`` and ``ablation.md``.

    A (variant, seed) whose ``result.json`` already exists with the same config is reused,
    so an interrupted ablation continues where it stopped.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {}
    configs = {}
    for name, ov in variant_overrides(variants).items():
        results[name] = []
        for seed in seeds:
            tc = apply_train_overrides(train_cfg, {**ov, "seed": seed})
            run_dir = out_dir / name.replace("+", "plus_") / f"seed{seed}"
            cfg_key = json.dumps({"model": model_cfg.to_dict(), "train": tc.to_dict()}, sort_keys=True)
            configs[name] = tc.to_dict()
            done = run_dir / "result.json"
            key_file = run_dir / "ablation_key.json"
            if done.exists() and key_file.exists() and same_run_config(key_file.read_text(), cfg_key, model_cfg, tc):
                res = json.loads(done.read_text())
                log(f"[ablation] {name} seed {seed}: reused {done}")
            else:
                run_dir.mkdir(parents=True, exist_ok=True)
                res = run_one(data, model_cfg, tc, run_dir, progress, bootstrap)
                (run_dir / "ablation_key.json").write_text(cfg_key)
                c = res["test"].get("cold", {})
                log(f"[ablation] {name} seed {seed}: {res['epochs']} epochs, {res['train_seconds']}s; "
                    f"val cold ndcg@20={res['val'].get('cold', {}).get('ndcg@20', float('nan')):.4f} "
                    f"test cold recall@20={c.get('recall@20', float('nan')):.4f}")
            results[name].append(res)
    summary = summarize(results)
    payload = {"variants": list(results), "seeds": list(seeds), "model": model_cfg.to_dict(), "train_configs": configs,
               "runs": results, "summary": summary}
    (out_dir / "ablation.json").write_text(json.dumps(payload, indent=1, default=str))
    write_table(summary, out_dir / "ablation.md", header)
    log(f"[ablation] wrote {out_dir / 'ablation.md'}; selected on validation: {summary['selected_on_validation']}")
    return payload


def _load_feature_file(spec: str):
    """``NAME=PATH`` of a torch file ``{"item_ids", "x", optional "mask"}`` -> ItemFeatures."""
    from graphrec.data.features import ItemFeatures

    name, _, path = spec.partition("=")
    if not path:
        raise ValueError(f"--features-file expects NAME=PATH, got {spec!r}")
    blob = torch.load(path, map_location="cpu")
    x = torch.as_tensor(blob["x"]).float()
    mask = torch.as_tensor(blob["mask"]).bool() if "mask" in blob else x.abs().sum(1) > 0
    return name, ItemFeatures(name, [str(i) for i in blob["item_ids"]], x, mask, f"file:{path}", {"source": path})


def main(argv: Sequence[str] | None = None) -> int:
    """``graphrec ablation``: run the objective ablation on a run directory's data and features."""
    from graphrec.config import load_config

    p = argparse.ArgumentParser(prog="graphrec ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="run config YAML (default: built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    p.add_argument("--out", help="output directory (default: <run_dir>/ablation)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"subset of {list(VARIANTS)}")
    p.add_argument("--epochs", type=int, help="override train.epochs (reduced budget)")
    p.add_argument("--steps-per-epoch", type=int, help="override train.steps_per_epoch (reduced budget)")
    p.add_argument("--features-file", action="append", default=[], metavar="NAME=PATH",
                   help="use a pre-computed feature file instead of the run's feature store (repeatable)")
    p.add_argument("--bootstrap", type=int, default=1000, help="user-bootstrap resamples per run (0 = off)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)

    cfg = load_config(a.config, a.set)
    train_cfg = cfg.train
    if a.epochs:
        train_cfg = train_cfg.replace(epochs=a.epochs)
    if a.steps_per_epoch:
        train_cfg = train_cfg.replace(steps_per_epoch=a.steps_per_epoch)
    if a.features_file:
        features = dict(_load_feature_file(s) for s in a.features_file)
    else:
        from graphrec.stages import stage_encode

        features = stage_encode(cfg, progress=not a.no_progress)
    from graphrec.stages import load_data

    data = load_data(cfg, features)
    model_cfg = cfg.model.restricted_to(data.features)
    out = Path(a.out) if a.out else cfg.paths.ablation
    cmd = "graphrec ablation " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    header = (f"# Objective ablation\n\nCommand: `{cmd}`\n\nData: {cfg.paths.root} ({data.num_users} users, "
              f"{data.num_items} items, {data.train.shape[1]} train edges); features: "
              + ", ".join(f"{k} ({v.fingerprint})" for k, v in data.features.items())
              + f"; epochs <= {train_cfg.epochs}, steps/epoch {train_cfg.steps_per_epoch or 'full'}.")
    run_ablation(data, model_cfg, train_cfg, out, a.variants, a.seeds, not a.no_progress, a.bootstrap, header=header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
