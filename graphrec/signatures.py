"""Signatures of files, values and code: what stage stamps and checkpoints record.

A leaf module (standard library only), so every layer can use it:

* :func:`file_signature`: size + sha256 of a file's bytes (not its mtime: a data set copied
  elsewhere keeps its signature);
* :func:`fingerprint`: a short hash of any JSON-able value (config sections, signatures);
* :func:`code_fingerprint`: the package version plus a hash of the source of the graphrec
  modules a piece of work runs, found by following their ``import`` statements (so a change
  to a baseline's code invalidates that baseline's trained models and nothing else).
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

PACKAGE_ROOT = Path(__file__).resolve().parent


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_signature(path: str | Path) -> str:
    """Size + sha256 of the content: changes exactly when the file's bytes do.

    Timestamps are deliberately left out, so a data set copied or re-mounted elsewhere (new
    mtimes, same bytes) does not invalidate the stages built from it.
    """
    path = Path(path)
    return hashlib.sha256(f"{path.stat().st_size}:{file_sha256(path)}".encode()).hexdigest()[:16]


def fingerprint(obj: Any) -> str:
    """Short stable hash of a JSON-able value (keys sorted; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def package_version() -> str:
    """The installed graphrec version (``0.1.0+local`` when running from a checkout)."""
    try:
        from importlib.metadata import version

        return version("graphrec")
    except Exception:  # not installed
        return "0.1.0+local"


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for cand in (PACKAGE_ROOT.parent / rel.with_suffix(".py"), PACKAGE_ROOT.parent / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def module_imports(name: str, roots: tuple[str, ...] = ("graphrec",)) -> set[str]:
    """Modules under ``roots`` imported anywhere in module ``name`` (top level or inside functions).

    Args:
        name: dotted module name, e.g. ``"graphrec.serve.recommender"``.
        roots: top-level packages whose modules count (default graphrec only; the import-layer
            test also follows ``data_prep``).
    """
    path = _module_file(name)
    if path is None:
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in roots)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] not in roots:
                continue
            out.add(mod)
            for a in node.names:  # `from graphrec.x import y` may name a submodule y
                if _module_file(f"{mod}.{a.name}") is not None:
                    out.add(f"{mod}.{a.name}")
    return {m for m in out if _module_file(m) is not None}


@lru_cache(maxsize=None)
def import_closure(names: tuple[str, ...]) -> tuple[str, ...]:
    """Every graphrec module reachable from ``names`` by imports, plus their parent packages.

    Parent packages (``graphrec.baselines`` for ``graphrec.baselines.heater``) are included as
    files, since importing a submodule runs them, but their own imports are not followed: a
    package ``__init__`` that re-exports its submodules does not make every sibling part of
    a module's code.
    """
    seen: set[str] = set()
    parents: set[str] = set()
    todo = list(names)
    while todo:
        m = todo.pop()
        if m in seen or _module_file(m) is None:
            continue
        seen.add(m)
        parts = m.split(".")
        parents.update(".".join(parts[:k]) for k in range(1, len(parts)))
        todo += sorted(module_imports(m))
    return tuple(sorted(seen | {p for p in parents if _module_file(p) is not None}))


def code_fingerprint(modules: Iterable[str]) -> str:
    """Version + hash of the source of ``modules`` and every graphrec module they import.

    Args:
        modules: dotted module names, e.g. ``["graphrec.baselines.heater"]``.
    """
    h = hashlib.sha256(package_version().encode())
    for m in import_closure(tuple(sorted(set(modules)))):
        path = _module_file(m)
        h.update(m.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
