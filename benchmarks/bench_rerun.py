"""GraphRec alone, re-trained with the current code on the splits of an existing k-fold benchmark.

For each run ``r`` of ``<benchmark>/run<r>``: the benchmark's own per-run config (``run<r>/config.yaml``, plus
``--set`` overrides), GraphRec's full train stage (GNN, warm refinement, backbone, calibration; first seed),
evaluated once on that run's test files; compared with the GraphRec and knn_pop metrics the benchmark stored
(``run<r>/evaluation/metrics.json``). It answers "does this code change move GraphRec's benchmark numbers?"
without retraining the baselines; it is not a benchmark of record (``graphrec benchmark`` is).

``--recalibrate-from TAG`` skips training: it takes the models an earlier ``--tag TAG`` run trained and
only re-runs their calibration with this run's overrides (e.g. a calibration grid), so the comparison with
that tag isolates the calibration change (same GNN, same backbone).

Run:
    python3 benchmarks/bench_rerun.py --tag fp32                                  # current defaults
    python3 benchmarks/bench_rerun.py --tag bf16 --set train.precision=bf16      # an option
    python3 benchmarks/bench_rerun.py --tag textw --recalibrate-from fp32 --set "train.calibrate_text_weight=[0.5,0.75,1.0]"

``--retrain-backbone`` (with ``--recalibrate-from``) trains the collaborative backbone again too (same GNN).
``--pair-only`` recomputes the paired ratios of a tag's file (e.g. after a run was cut short: ``--runs`` picks).
Warm rows are also paired against the benchmark's LightGCN (the warm target).
``--eval-only`` evaluates the models a tag already has again (e.g. after this script learnt a new check).

Writes ``benchmarks/results/rerun_<tag>.json`` (models under ``--work``, default /tmp/graphrec_rerun/<tag>).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("cold", "warm", "hybrid", "cold_full")


def _recalibrate(src: Path, dst: Path, train_cfg, validator, model_cfg=None, data=None) -> dict:
    """Copy the model in ``src`` to ``dst`` and calibrate it again with ``train_cfg`` (calibration.json rewritten).

    A model trained before the learned content walk existed gets one (unfitted; the calibration fits
    it) when ``model_cfg.learned_walk`` asks for it: the trained GNN is the same, only the terms change."""
    import shutil

    from graphrec.recipes.calibrate import calibrate
    from graphrec.training.checkpoint import load_checkpoint, save_checkpoint

    dst.mkdir(parents=True, exist_ok=True)
    model, st = load_checkpoint(src / "checkpoint.pt", return_state=True)
    if model_cfg is not None and model_cfg.learned_walk and model.walk is None:
        model.model_config = model.model_config.replace(learned_walk=True, walk_dim=model_cfg.walk_dim,
                                                        walk_temperature=model_cfg.walk_temperature)
        model.reset_walk(model_cfg.walk_dim, model_cfg.walk_temperature)
    if model_cfg is not None and model.walk is not None and model_cfg.walk_codes != (model.walk.codes is not None):
        model.model_config = model.model_config.replace(walk_codes=model_cfg.walk_codes)  # e.g. --set model.walk_codes=true
        model.reset_walk(codes=model_cfg.walk_codes)
    backbone = None
    if data is not None:  # --retrain-backbone: the same GNN, a new backbone with this run's train config
        from graphrec.recipes.backbone import train_backbone

        model.backbone.reset_parameters()
        backbone = train_backbone(model, data, train_cfg, validator)
        (dst / "backbone.json").write_text(json.dumps(backbone, indent=1, default=float) + "\n")
    for name in ("config.yaml", "history.json", "backbone.json"):
        if (src / name).exists() and not (name == "backbone.json" and data is not None):
            shutil.copy(src / name, dst / name)
    rec = calibrate(model, train_cfg, validator)
    (dst / "calibration.json").write_text(json.dumps(rec, indent=1) + "\n")
    save_checkpoint(dst / "checkpoint.pt", model, model.model_config, train_cfg, step=st["step"], epoch=st["epoch"],
                    best_metric=st["best_metric"], user_ids=st["user_ids"], item_ids=st["item_ids"],
                    fingerprints=st["fingerprints"], extra={"calibrated": True})
    return {"summary": {"recalibrated_from": str(src), "chosen": rec.get("chosen"), "text_weight": rec.get("text_weight"),
                        **({"backbone_best_val": backbone.get("best_val"), "backbone_epochs": backbone.get("epochs_run")}
                           if backbone else {})}}


def _exposure(result, data, stored: Path) -> dict:
    """Popularity checks next to accuracy: Gini of cold-test exposure (top-20 slots over the cold items)
    and the cold share of hybrid top-20 slots, for the new model and (from the benchmark's fairness
    audit) the benchmark's GraphRec and knn_pop."""
    from graphrec.evaluation.fairness.exposure import item_groupings, setting_exposure
    from graphrec.evaluation.index import setting_specs

    specs = setting_specs(data, "test", ["cold", "hybrid"])
    groups = item_groupings(data, "test")
    new = {s: setting_exposure(result.topk[s][1], specs[s], data, groups, 20) for s in ("cold", "hybrid")}
    old = json.loads(stored.read_text())["models"] if stored.exists() else {}

    def pick(e, s, key):
        return e.get(s, {}).get(key) if e else None

    return {"cold/gini@20": {"new": new["cold"]["gini@20"], **{n: pick(old.get(m, {}).get("exposure"), "cold", "gini@20")
                                                            for n, m in (("benchmark", "graphrec"), ("knn_pop", "knn_pop"))}},
            "hybrid/cold_slot_share@20": {"new": new["hybrid"]["cold_slot_share@20"],
                                          **{n: pick(old.get(m, {}).get("exposure"), "hybrid", "cold_slot_share@20")
                                             for n, m in (("benchmark", "graphrec"), ("knn_pop", "knn_pop"))}}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default=str(ROOT / "runs" / "ml1m-mm" / "benchmark"))
    p.add_argument("--data-root", default=str(ROOT / "runs" / "ml1m-mm"), help="run dir with prepared/ and features/")
    p.add_argument("--runs", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--tag", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default=None)
    p.add_argument("--recalibrate-from", default=None, help="reuse the models of this earlier tag; re-run only the calibration")
    p.add_argument("--retrain-backbone", action="store_true",
                   help="with --recalibrate-from: also train the backbone again (e.g. with --set train.backbone_layers=3)")
    p.add_argument("--pair-only", action="store_true", help="recompute the paired ratios of this tag's file (no evaluation)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the models this tag already has (no training or calibration)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from graphrec.config import load_config
    from graphrec.data import load_prepared, load_recdata
    from graphrec.encoders import encode_items
    from graphrec.evaluation.protocol import evaluate, make_validator
    from graphrec.evaluation.stats import paired_ratio
    from graphrec.stages.train import _train_graphrec_dir
    from graphrec.training.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    bench, root = Path(args.benchmark), Path(args.data_root)
    work = Path(args.work or f"/tmp/graphrec_rerun/{args.tag}")
    out_file = ROOT / "benchmarks" / "results" / f"rerun_{args.tag}.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(out_file.read_text()) if (args.eval_only or args.pair_only) and out_file.exists() else {}
    res: dict = {"benchmark": str(bench), "overrides": prev.get("overrides", args.overrides), "runs": {}}
    if args.pair_only:
        res["runs"] = prev["runs"]
        args.runs = [r for r in args.runs if f"run{r}" in res["runs"]]
    _, items = load_prepared(root / "prepared")
    features: dict[str, dict] = {}  # per encoders config (the runs normally share one): read from the store once
    for r in [] if args.pair_only else args.runs:
        rd = bench / f"run{r}"
        cfg = load_config(rd / "config.yaml", args.overrides + [f"train.num_threads={args.threads}", "train.tensorboard=false"])
        key = json.dumps(cfg.encoders.to_dict(), sort_keys=True)
        if key not in features:
            features[key] = encode_items(items, cfg.encoders, root / "features", progress=False)[0]
        feats = features[key]
        data = load_recdata(root / "prepared", rd / "split", feats)
        val = make_validator(data, ks=(20,), batch_size=cfg.eval.batch_size)
        t = time.perf_counter()
        if args.eval_only:
            stamp = {"summary": (prev.get("runs", {}).get(f"run{r}", {}).get("stage") or {})}
        elif args.recalibrate_from:
            stamp = _recalibrate(work.parent / args.recalibrate_from / f"run{r}", work / f"run{r}",
                                 cfg.train.replace(seed=cfg.suite.seeds[0]), val, cfg.model,
                                 data if args.retrain_backbone else None)
        else:
            stamp = _train_graphrec_dir(f"rerun {r}", work / f"run{r}", data, cfg.model.restricted_to(data.features),
                                        cfg.train.replace(seed=cfg.suite.seeds[0]), {"run": r, "tag": args.tag}, val, True,
                                        print, False)
        seconds = prev["runs"][f"run{r}"]["train_seconds"] if args.eval_only and prev else time.perf_counter() - t
        calib = work / f"run{r}" / "calibration.json"
        crec = json.loads(calib.read_text()) if calib.exists() else {}
        cold_val = crec.get("cold_val", {})
        m = evaluate(load_checkpoint(work / f"run{r}" / "checkpoint.pt"), data, "test", SETTINGS, (20,), cfg.eval.batch_size)
        old = json.loads((rd / "evaluation" / "metrics.json").read_text())
        row = {"train_seconds": seconds, "stage": stamp.get("summary") if isinstance(stamp, dict) else None,
               "cold_val_calibrated": cold_val.get("calibrated"), "text_weight": crec.get("text_weight")}
        for s in SETTINGS:
            for k in ("recall@20", "ndcg@20"):
                row[f"{s}/{k}"] = {"new": float(m[s][k]), "benchmark": old["graphrec"][s][k], "knn_pop": old["knn_pop"][s][k]}
        row.update(_exposure(m, data, rd / "evaluation" / "fairness.json"))
        res["runs"][f"run{r}"] = row
        print(f"run {r} ({seconds:.0f} s): " + ", ".join(f"{k} {v['new']:.4f} (benchmark {v['benchmark']:.4f})"
                                                     for k, v in row.items() if k.endswith("recall@20")), flush=True)
        out_file.write_text(json.dumps(res, indent=1))
    rows = [res["runs"][f"run{r}"] for r in args.runs]
    stored = [json.loads((bench / f"run{r}" / "evaluation" / "metrics.json").read_text()) for r in args.runs]
    res["paired"] = {}
    base_file = ROOT / "benchmarks" / "results" / f"rerun_{args.recalibrate_from}.json"
    base_rows = json.loads(base_file.read_text())["runs"] if args.recalibrate_from and base_file.exists() else None
    for s in SETTINGS:
        for k in ("recall@20", "ndcg@20"):
            key = f"{s}/{k}"
            new = [x[key]["new"] for x in rows]
            pr = res["paired"][key] = {"new_over_benchmark": paired_ratio(new, [x[key]["benchmark"] for x in rows]),
                                       "new_over_knn_pop": paired_ratio(new, [x[key]["knn_pop"] for x in rows])}
            if base_rows:
                pr["new_over_" + args.recalibrate_from] = paired_ratio(new, [base_rows[f"run{r}"][key]["new"] for r in args.runs])
            if all(s in m.get("lightgcn", {}) for m in stored):  # warm: the target is LightGCN at full strength
                pr["new_over_lightgcn"] = paired_ratio(new, [m["lightgcn"][s][k] for m in stored])
            a, b = pr["new_over_benchmark"], pr["new_over_knn_pop"]
            print(f"{key}: new/benchmark {a['ratio']:.4f} [{a['ci95'][0]:.4f}, {a['ci95'][1]:.4f}] {a['resolved']}; "
                  f"new/knn_pop {b['ratio']:.4f} [{b['ci95'][0]:.4f}, {b['ci95'][1]:.4f}] won {b['wins']}/{b['runs']}"
                  + (f"; new/{args.recalibrate_from} {pr['new_over_' + args.recalibrate_from]['ratio']:.4f} "
                     f"[{pr['new_over_' + args.recalibrate_from]['ci95'][0]:.4f}, "
                     f"{pr['new_over_' + args.recalibrate_from]['ci95'][1]:.4f}]" if base_rows else ""))
    out_file.write_text(json.dumps(res, indent=1))
    print(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
