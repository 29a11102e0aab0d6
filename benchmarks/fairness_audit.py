"""Fairness and exposure audit of an already trained run, without re-running the suite.

Loads what ``graphrec train`` wrote through :func:`graphrec.stages.load_models` (the GraphRec
checkpoints ``model/`` and ``model_seed<N>/``, the seed ensemble of ``ensemble.json`` when it is
current, and the trained baselines under ``baselines/<name>/``; nothing is refitted), evaluates
each on the test files with ``evaluate(..., per_user=True)`` and runs
:func:`graphrec.evaluation.fairness.run_fairness`: writes ``fairness.json``, the three PNG plots
and ``fairness.md`` (the report section) to ``--out`` (default ``<run_dir>/fairness``).

User attributes come from ``<run_dir>/prepared/users.csv``; a run prepared before that file
existed needs ``graphrec prepare --config ...`` once (the split and the model stay up to date).

Run: ``python benchmarks/fairness_audit.py --config configs/notebook.yaml [--set eval.rerank_models=[graphrec,graphrec_ensemble]]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", "-c", required=True, help="the run's YAML config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None, help="output directory (default: <run_dir>/fairness)")
    p.add_argument("--no-baselines", action="store_true", help="audit the GraphRec models only")
    a = p.parse_args(argv)

    from graphrec import stages
    from graphrec.config import load_config
    from graphrec.data.users import load_user_attributes
    from graphrec.evaluation.fairness import run_fairness
    from graphrec.evaluation.protocol import evaluate
    from graphrec.training.manifest import load_ensemble

    cfg = load_config(a.config, a.overrides)
    ensemble = cfg.suite.ensemble and len(cfg.suite.seeds) > 1
    if ensemble:
        ens, why = load_ensemble(cfg.paths.ensemble_manifest)
        if ens is None:
            print(f"skipping the ensemble: {why}")
            ensemble = False
    cfg = cfg.replace(suite=cfg.suite.replace(oracle=False, ensemble=ensemble,
                                              baselines=cfg.suite.baselines and not a.no_baselines))
    ev = cfg.eval
    out = Path(a.out) if a.out else cfg.paths.root / "fairness"
    t0 = time.time()
    features = stages.stage_encode(cfg, progress=False, log=lambda m: None)
    data = stages.load_data(cfg, features)
    models, _ = stages.load_models(cfg, cfg.paths, data, log=lambda m: None)
    scorers = models.scorers
    t_fit = time.time() - t0
    results = {name: evaluate(sc, data, "test", ev.settings, ev.ks, ev.batch_size, per_user=True)
               for name, sc in scorers.items()}
    t_eval = time.time() - t0 - t_fit
    attrs = load_user_attributes(cfg.paths.prepared)
    if attrs is None:
        print(f"no {cfg.paths.prepared / 'users.csv'}: auditing activity groups only "
              f"(run `graphrec prepare --config {a.config}` to read the data set's users file)")
    md = run_fairness(results, data, attrs, out, ev, scorers=scorers)
    (out / "fairness.md").write_text(md + "\n")
    t_all = time.time() - t0
    print(md)
    print(f"\nwrote {out}/fairness.json, fairness.md and plots; load {t_fit:.1f}s, evaluate {t_eval:.1f}s, "
          f"audit + re-ranking curves {t_all - t_fit - t_eval:.1f}s")
    return {"out": str(out), "seconds": round(t_all, 1)}


if __name__ == "__main__":
    main()
