"""Command-line interface: ``graphrec <command> [--config FILE] [--set key=value ...]``.

Commands: run (every stage), prepare, split, encode, train, evaluate, recommend, add-items, ablation, config,
init (a config proposed from your data files), serve (HTTP service + page on a trained run).
Every stage reads one YAML config (``--config``); ``--set section.key=value`` overrides a key.
Exit codes: 0 success, 2 bad input or configuration (the message names file/row/field or key),
1 unexpected failure.
"""

from __future__ import annotations

import argparse
import os
import sys

from graphrec.config import Config, ConfigError, load_config
from graphrec.config_base import reference_markdown
from graphrec.data.report import DataError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="YAML config file (default: built-in defaults = ml1m-mm)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--force", action="store_true", help="redo the stage even if its outputs are up to date")


def _command(sub, name: str, help_: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that reads the run config (``--config``, ``--set``, ``--force``)."""
    p = sub.add_parser(name, help=help_, description=description)
    _common(p)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


#: Commands that write under the run directory (checked to be writable before any work).
WRITING = ("run", "prepare", "split", "encode", "train", "evaluate", "add-items", "benchmark")


def check_run_dir(run_dir: str) -> None:
    """``run_dir`` can be created and written, or a :class:`ConfigError` naming it and why."""
    from pathlib import Path

    root = Path(run_dir)
    probe = root / ".graphrec-write-test"
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"run_dir: {parent} is a file, not a directory; set run_dir to a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        where = exc.filename or root
        raise ConfigError(f"run_dir: cannot write the run directory {root} ({where}: {exc.strerror or exc}); "
                          "set run_dir to a writable directory") from None


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "a file"
    return f"{where}: {exc.strerror or exc}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphrec", description="Cold-start multimodal recommendation.",
                                epilog="Every config key is documented in docs/CONFIG.md (graphrec config --reference).")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in [
        ("run", "run every stage: prepare -> split -> encode -> train -> evaluate"),
        ("prepare", "raw data -> canonical tables + prep report"),
        ("split", "item cold-start split (train / val_warm / test_warm / val_cold / test_cold)"),
        ("encode", "encode item text and images into the feature store (cached by fingerprint)"),
        ("train", "train every model of the run: GraphRec (each seed; early stopping on cold-validation NDCG@20), "
                  "the warm oracle, the baselines (tuned on validation)"),
        ("evaluate", "evaluate the trained models once on test: metrics.json, top-K files, report, plots"),
    ]:
        sp = _command(sub, name, help_, help_)
        sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
        if name in ("train", "run"):
            sp.add_argument("--jobs", type=int, default=None, metavar="J",
                            help="train the run's models in J processes (1 or 2; default suite.jobs): the second "
                                 "process trains the warm baselines and their students while this one trains GraphRec "
                                 "and the other baselines")
            sp.add_argument("--lane", choices=["A", "B"], default=None, help=argparse.SUPPRESS)
            sp.add_argument("--nproc", type=int, default=1, metavar="N",
                            help="train GraphRec on N local processes (data-parallel, launched with torchrun; Gloo on "
                                 "CPU, one GPU per process with NCCL; default 1). See README 'Devices and processes'")
        if name in ("encode", "run"):
            sp.add_argument("--engine", choices=["local", "ray"], default=None,
                            help="where missing features are encoded: local (this process) or ray (Ray Data actors; "
                                 "the scale extra; cluster: --set encoders.ray_address=auto|ray://host:10001); "
                                 "overrides encoders.engine")
    r = _command(sub, "recommend", "print the top-K items for users of a trained run",
                 "print the top-K items (titles and scores) for users of a trained run, excluding what they already "
                 "interacted with")
    r.add_argument("--user", "-u", action="append", required=True, help="user id (repeatable)")
    r.add_argument("--k", "-k", type=_positive_int, default=10, help="number of items, >= 1 (default: 10)")
    r.add_argument("--include-seen", action="store_true",
                   help="do not exclude the user's known interactions (by default every item the user rated is "
                        "left out, also those rated below data.rating_threshold: prepared/history.csv)")
    r.add_argument("--exposure-penalty", type=float, default=0.0, metavar="LAMBDA",
                   help="exposure-aware re-ranking: lambda >= 0 moves popular items down and cold/new items up "
                        "(0 = the model's ranking; graphrec evaluate reports the curve and the lambda chosen on "
                        "validation in fairness.json)")
    a = _command(sub, "add-items", "add new items (CSV) to a trained run without retraining",
                 "embed new items from content alone (CSV: item_id, text and/or title/genres/plot..., optional "
                 "image_path) and make them recommendable")
    a.add_argument("csv", help="CSV of new items")
    for sp in (r, a):
        sp.add_argument("--model", choices=["auto", "single", "ensemble"], default="auto",
                        help="auto (default): the seed ensemble recorded by `graphrec train` when present and "
                             "current, else model/; single: model/ only; ensemble: require the ensemble")
    r.add_argument("--backend", choices=["auto", "exact", "faiss"], default="auto",
                   help="item search: auto (default) searches exactly below --ann-min-items items and with a faiss "
                        "HNSW index from there on; exact; faiss (exact IndexFlatIP)")
    r.add_argument("--ann-min-items", type=int, default=None, metavar="N",
                   help="catalogue size from which --backend auto uses HNSW (default: 200000)")
    sub.add_parser("ablation", help="objective ablation: each self-supervised term off/on x seeds (graphrec ablation --help)",
                   add_help=False)
    sub.add_parser("init", help="propose a commented config from an interactions file and an items file "
                   "(graphrec init --help)", add_help=False)
    sub.add_parser("serve", help="serve a trained run over HTTP, with a page (graphrec serve --help)", add_help=False)
    b = _command(sub, "benchmark", "item k-fold benchmark: every model on R item splits, paired statistics",
                 "item k-fold benchmark (section `benchmark` of the config): each run trains and evaluates GraphRec "
                 "and every baseline on its own item split; writes <run_dir>/benchmark/{summary.json,report.md}. "
                 "Resumable: rerun the same command.")
    b.add_argument("--runs", type=int, default=None, help="number of runs (default: benchmark.runs)")
    b.add_argument("--only-run", type=int, default=None, help="train and evaluate this run only (used by the workers)")
    b.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: benchmark.threads)")
    b.add_argument("--summary-only", action="store_true", help="only recompute summary.json and report.md from the runs")
    b.add_argument("--lane", choices=["A", "B"], default=None, help=argparse.SUPPRESS)  # a worker of `benchmark.jobs: 2`
    b.add_argument("--session", default=None, help=argparse.SUPPRESS)
    b.add_argument("--no-progress", action="store_true", help="hide progress bars")
    c = _command(sub, "config", "print the effective config, or the reference of every option")
    c.add_argument("--reference", action="store_true", help="print the Markdown reference of all options")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "init":
        from graphrec.init_config import main as init_main

        return init_main(argv[1:])
    if argv and argv[0] == "serve":
        from graphrec.service.__main__ import main as serve_main

        return serve_main(argv[1:])
    if argv and argv[0] == "ablation":
        from graphrec.ablation import main as ablation_main

        return _guarded("ablation", lambda: ablation_main(argv[1:]))
    args = build_parser().parse_args(argv)
    if getattr(args, "engine", None):
        args.overrides.append(f"encoders.engine={args.engine}")

    def run() -> int:
        cfg = load_config(args.config, args.overrides)
        if args.command in WRITING:
            check_run_dir(cfg.run_dir)
        return _dispatch(args, cfg)

    return _guarded(args.command, run)


def _guarded(command: str, run) -> int:
    """``run()``; bad input (config, data, a file that cannot be read or written) is one line naming it and exit 2."""
    try:
        return run()
    except (ConfigError, DataError) as exc:
        print(f"graphrec {command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `graphrec config | head`
        return 0
    except OSError as exc:  # a file or directory that cannot be read or written: named, no traceback
        print(f"graphrec {command}: error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graphrec {command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace, cfg: Config) -> int:
    from graphrec import stages

    if getattr(args, "nproc", 1) < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {args.nproc}")
    if args.command == "config":
        print(reference_markdown(Config) if args.reference else _yaml(cfg))
        return 0
    if args.command in ("prepare", "run"):
        stages.stage_prepare(cfg, force=args.force)
    if args.command in ("split", "run"):
        stages.stage_split(cfg, force=args.force)
    if args.command in ("recommend", "add-items"):
        return _serve(args, cfg)
    if args.command == "benchmark":
        return _benchmark(args, cfg)
    progress = not getattr(args, "no_progress", False)
    if args.command in ("encode", "train", "evaluate", "run"):
        features = stages.stage_encode(cfg, force=args.force, progress=progress)
    if args.command in ("train", "run"):
        _train(args, cfg, features, progress)
    if args.command in ("evaluate", "run"):
        summary = stages.stage_evaluate(cfg, features, force=args.force, progress=progress)
        print(summary)
    return 0


def _train(args: argparse.Namespace, cfg: Config, features, progress: bool) -> None:
    """The train stage, in one process or in two lanes (:func:`graphrec.stages.train.lane_models`)."""
    import subprocess

    from graphrec import stages
    from graphrec.stages.train import lane_models

    jobs = args.jobs if args.jobs is not None else cfg.suite.jobs
    if args.lane is not None or jobs <= 1:
        lanes = lane_models(cfg)
        only = (lambda m: m in lanes[args.lane]) if args.lane else None
        stages.stage_train(cfg, features, force=args.force, progress=progress, nproc=args.nproc, only=only)
        return
    argv = ["train"] + ([f"--config={args.config}"] if args.config else []) + [f"--set={o}" for o in args.overrides]
    argv += ["--lane", "A", "--no-progress"] + (["--force"] if args.force else [])
    cfg.paths.root.mkdir(parents=True, exist_ok=True)
    log_path = cfg.paths.root / "train_laneA.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "a") as fh:
        print(f"[train] second process: warm baselines and their students (log: {log_path})")
        child = subprocess.Popen([sys.executable, "-m", "graphrec.cli", *argv], stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            lanes = lane_models(cfg)
            stages.stage_train(cfg, features, force=args.force, progress=progress, nproc=args.nproc,
                               only=lambda m: m in lanes["B"])
        finally:
            rc = child.wait()
    if rc != 0:
        raise RuntimeError(f"the second train process failed (exit {rc}); see {log_path}")
    stages.stage_train(cfg, features, force=False, progress=progress, nproc=args.nproc)  # all up to date: records


def _benchmark(args: argparse.Namespace, cfg: Config) -> int:
    from graphrec.benchmark.runner import run_benchmark, run_one
    from graphrec.benchmark.summary import write_summary
    from graphrec.training.seed import torch_threads

    if args.runs is not None:
        cfg = cfg.replace(benchmark=cfg.benchmark.replace(runs=args.runs))
    worker_argv = ([f"--config={args.config}"] if args.config else []) + [f"--set={o}" for o in args.overrides]
    if args.runs is not None:
        worker_argv.append(f"--runs={args.runs}")
    command = "graphrec " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("graphrec") else "graphrec benchmark"
    if args.summary_only:
        write_summary(cfg, list(range(cfg.benchmark.runs)), command=command)
        return 0
    if args.lane is not None:
        from graphrec.benchmark.lanes import run_lane

        with torch_threads(args.threads or 1):
            run_lane(cfg, args.lane, args.session or "manual", list(range(cfg.benchmark.runs)), args.force,
                     progress=not args.no_progress)
        return 0
    if args.only_run is not None:
        from graphrec import stages

        features = stages.stage_encode(cfg, progress=False)
        with torch_threads(args.threads or cfg.benchmark.threads):
            run_one(cfg, args.only_run, features, args.force, progress=not args.no_progress)
        return 0
    run_benchmark(cfg, worker_argv, force=args.force, progress=not args.no_progress, command=command)
    return 0


def _serve(args: argparse.Namespace, cfg: Config) -> int:
    from graphrec.serve import Recommender

    from graphrec.serve.index import ANN_MIN_ITEMS

    index_kw = {"backend": getattr(args, "backend", "auto"), "ann_min_items": getattr(args, "ann_min_items", None) or ANN_MIN_ITEMS}
    rec = Recommender.load(cfg.run_dir, model=args.model, log=lambda m: print(m, file=sys.stderr), **index_kw)
    if args.command == "add-items":
        added = rec.add_items(args.csv)
        for note in rec.last_notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"added {len(added)} items to {cfg.run_dir} (now {len(rec.index):,} recommendable items)")
        return 0
    try:
        table = rec.recommend(args.user, k=args.k, exclude_seen=not args.include_seen,
                              exposure_penalty=args.exposure_penalty)
    except KeyError as exc:
        print(f"graphrec recommend: error: {exc.args[0]}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a negative --exposure-penalty
        print(f"graphrec recommend: error: {exc}", file=sys.stderr)
        return 2
    for u, grp in table.groupby("user_id", sort=False):
        print(f"top {args.k} for user {u}:")
        for row in grp.itertuples():
            print(f"  {row.rank:>3}. {row.title or row.item_id}  (item {row.item_id}, score {row.score:.3f})")
    return 0


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


if __name__ == "__main__":
    sys.exit(main())
