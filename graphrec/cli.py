"""Command-line interface: ``graphrec <command> [--config FILE] [--set key=value ...]``.

Commands: run (every stage), prepare, split, encode, train, evaluate, recommend, add-items, config.
Every stage reads one YAML config (``--config``); ``--set section.key=value`` overrides a key.
Exit codes: 0 success, 2 bad input or configuration (the message names file/row/field or key),
1 unexpected failure.
"""

from __future__ import annotations

import argparse
import sys

from graphrec.config import Config, ConfigError, load_config
from graphrec.config_base import reference_markdown
from graphrec.data.report import DataError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="YAML config file (default: built-in defaults = ml1m-mm)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--force", action="store_true", help="redo the stage even if its outputs are up to date")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphrec", description="Cold-start multimodal recommendation.",
                                epilog="Every config key is documented in docs/CONFIG.md (graphrec config --reference).")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in [
        ("run", "run every stage: prepare -> split -> encode -> train -> evaluate"),
        ("prepare", "raw data -> canonical tables + prep report"),
        ("split", "item cold-start split (train / val_warm / test_warm / val_cold / test_cold)"),
    ]:
        _common(sub.add_parser(name, help=help_, description=help_))
    c = sub.add_parser("config", help="print the effective config, or the reference of every option")
    _common(c)
    c.add_argument("--reference", action="store_true", help="print the Markdown reference of all options")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        return _dispatch(args, cfg)
    except (ConfigError, DataError) as exc:
        print(f"graphrec {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, cfg: Config) -> int:
    from graphrec import stages

    if args.command == "config":
        print(reference_markdown(Config) if args.reference else _yaml(cfg))
        return 0
    if args.command in ("prepare", "run"):
        stages.stage_prepare(cfg, force=args.force)
    if args.command in ("split", "run"):
        stages.stage_split(cfg, force=args.force)
    return 0


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


if __name__ == "__main__":
    sys.exit(main())
