"""Writing a proposal: commented YAML (:func:`render_yaml`), a config file that is checked to load
(:func:`write_config`), and the ``graphrec init`` command (:func:`main`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphrec.data.report import DataError
from graphrec.init_config.decisions import Decision, Proposal, yaml_flow
from graphrec.init_config.propose import propose_config


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, width - len(indent) - 2)] or [f"{indent}#"]


def render_yaml(proposal: Proposal, command: str = "") -> str:
    """The proposal as YAML with the reason for each key as a comment above it."""
    lines = ["# Proposed by `graphrec init` from the data files" + (f":\n#   {command}" if command else "."),
             "# Every key below says why it was chosen; every other key keeps its default",
             "# (docs/CONFIG.md lists them all). Run with: graphrec run --config <this file>", ""]
    for n in proposal.notes:
        lines += _wrap(f"Note: {n}", "")
    if proposal.notes:
        lines.append("")
    tree: dict[str, Any] = {}  # section -> subtree, key -> Decision (insertion order = first mention)
    for d in proposal.decisions:
        node = tree
        *sections, leaf = d.key.split(".")
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = d

    def emit(node: dict[str, Any], depth: int) -> None:
        indent = "  " * depth
        for k, v in node.items():
            if isinstance(v, Decision):
                lines.extend(_wrap(v.why, indent))
                lines.append(indent + ("" if v.active else "# ") + f"{k}: {yaml_flow(v.value)}")
            else:
                if depth == 0:
                    lines.append("")
                lines.append(f"{indent}{k}:")
                emit(v, depth + 1)

    emit(tree, 0)
    return "\n".join(lines) + "\n"


def write_config(proposal: Proposal, path: str | Path, command: str = "", force: bool = False) -> Path:
    """Write :func:`render_yaml` to ``path`` and check that it loads as a :class:`~graphrec.config.Config`."""
    from graphrec.config import Config, ConfigError

    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it or --out to write elsewhere")
    text = render_yaml(proposal, command)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    try:
        Config.load_yaml(tmp)
    except ConfigError:
        tmp.unlink()
        raise
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``graphrec init --interactions F --items G [--users H] [--out CONFIG]``."""
    import argparse
    import sys

    from graphrec.config import ConfigError

    p = argparse.ArgumentParser(prog="graphrec init", description="inspect an interactions file and an items file "
                                "(and optionally a users file) and write a commented run config for them")
    p.add_argument("--interactions", "-i", required=True, help="interactions CSV/TSV (user id, item id, optional rating, timestamp)")
    p.add_argument("--items", required=True, help="items CSV/TSV (item id, text columns, optional image path column)")
    p.add_argument("--users", default=None, help="optional users CSV/TSV (user id + attributes)")
    p.add_argument("--out", "-o", default=None, help="config file to write (default: configs/<data folder name>.yaml)")
    p.add_argument("--run-dir", default=None, help="run directory of the config (default: runs/<data folder name>)")
    p.add_argument("--modalities", nargs="+", choices=["text", "image"], default=None,
                   help="force a text-only (text) or image-only (image) run; default: what the items file has")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    try:
        prop = propose_config(a.interactions, a.items, a.users, run_dir=a.run_dir, modalities=a.modalities)
        out = Path(a.out or f"configs/{Path(prop.get('run_dir')).name}.yaml")
        cmd = "graphrec init " + " ".join(argv)
        write_config(prop, out, command=cmd, force=a.force)
    except (DataError, ConfigError, ValueError) as exc:
        print(f"graphrec init: error: {exc}", file=sys.stderr)
        return 2
    print(prop.summary())
    print(f"\nwrote {out}\nnext: graphrec run --config {out}")
    return 0
