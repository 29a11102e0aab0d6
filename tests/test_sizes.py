"""Readable units: no module of ``graphrec/`` or ``data_prep/`` over 400 lines, no function over 80.

A function's size is its lines from ``def`` to its last line, less its docstring (a long
docstring is documentation, not complexity). Exceptions are listed with their size; the test
fails when one shrinks under the limit, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphrec", "data_prep")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# "path::function" -> why it is still over the limit.
FUNCTION_EXCEPTIONS: dict[str, str] = {}
MODULE_EXCEPTIONS: dict[str, str] = {}


def _files() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def function_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``fn`` from ``def`` to its end, without its docstring."""
    n = fn.end_lineno - fn.lineno + 1
    first = fn.body[0] if fn.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        n -= first.end_lineno - first.lineno + 1
    return n


def function_sizes() -> dict[str, int]:
    out: dict[str, int] = {}
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{rel}::{node.name}"
                out[key] = max(out.get(key, 0), function_lines(node))
    return out


def test_no_module_over_the_limit():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in _files()}
    over = {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    bad = sorted(f"{p}: {n} lines" for p, n in over.items() if p not in MODULE_EXCEPTIONS)
    assert not bad, f"modules over {MAX_MODULE_LINES} lines (split them by job):\n" + "\n".join(bad)
    stale = sorted(set(MODULE_EXCEPTIONS) - set(over))
    assert not stale, f"MODULE_EXCEPTIONS lists modules now within the limit, remove them: {stale}"


def test_no_function_over_the_limit():
    sizes = function_sizes()
    over = {f: n for f, n in sizes.items() if n > MAX_FUNCTION_LINES}
    bad = sorted(f"{f}: {n} lines" for f, n in over.items() if f not in FUNCTION_EXCEPTIONS)
    assert not bad, (f"functions over {MAX_FUNCTION_LINES} lines without their docstring (split them into named "
                     "helpers):\n" + "\n".join(bad))
    stale = sorted(set(FUNCTION_EXCEPTIONS) - set(over))
    assert not stale, f"FUNCTION_EXCEPTIONS lists functions now within the limit, remove them: {stale}"


def test_function_lines_leave_out_the_docstring():
    fn = ast.parse('def f():\n    """Doc\n\n    more.\n    """\n    x = 1\n    return x\n').body[0]
    assert function_lines(fn) == 3
