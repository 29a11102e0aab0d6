"""Layers import downward only (STYLE habit 14), and no module imports itself in a circle.

Every module of ``graphrec/`` and ``data_prep/`` is parsed with ``ast``; an import counts
wherever it stands (top level or inside a function), since a lazy import is still a dependency.
The layers, lowest first, are written out below: a module may import its own layer and the
layers below it, never one above.
"""

from __future__ import annotations

from pathlib import Path

from graphrec.signatures import module_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphrec", "data_prep")

# (layer name, module patterns). A pattern "a.b" covers module a.b and every a.b.*; the longest
# matching pattern decides. Config sections (``graphrec.<pkg>.config``) are leaves whatever
# package they live in: they are read by every layer above.
LAYERS: list[tuple[str, list[str]]] = [
    ("leaf", ["graphrec.config_base", "graphrec.signatures", "graphrec.paths", "graphrec.devices",
              "graphrec.losses", "graphrec.losses_ssl", "graphrec.encoders.template", "graphrec.rerank", "*.config"]),
    ("data & encoders", ["graphrec.data", "graphrec.encoders", "graphrec.augment", "data_prep"]),
    ("graph", ["graphrec.graph"]),
    ("model", ["graphrec.nn"]),
    ("training", ["graphrec.training"]),
    ("tasks, recipes, baselines", ["graphrec.task", "graphrec.recipes", "graphrec.baselines"]),
    ("evaluation", ["graphrec.evaluation"]),
    ("orchestration & apps", ["graphrec.stages", "graphrec.benchmark", "graphrec.ablation", "graphrec.cli",
                              "graphrec.serve", "graphrec.service", "graphrec.init_config", "graphrec.explore",
                              "graphrec.config", "graphrec"]),
]

# Known exceptions, each with the reason it is still there; the test fails when one disappears,
# so the lists cannot go stale. Empty is the goal.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def all_modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append(".".join(parts))
    return out


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, patterns) in enumerate(LAYERS):
        for p in patterns:
            if p == "*.config":
                hit = module.endswith(".config") and module != "graphrec.config"
                plen = len(module) + 1 if hit else -1  # a config section beats its package
            else:
                hit = module == p or module.startswith(p + ".")
                plen = len(p)
            if hit and plen > best_len:
                best, best_len = i, plen
    assert best is not None, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best


def import_graph() -> dict[str, set[str]]:
    return {m: module_imports(m, roots=PACKAGES) - {m} for m in all_modules()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_path(graph, sorted(c)) for c in comps]


def _cycle_path(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One concrete circle through the component's first module (breadth-first back to it)."""
    members, start = set(comp), comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def test_every_module_has_a_layer():
    for m in all_modules():
        layer_of(m)


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    found = {tuple(sorted(set(c))): c for c in cycles}
    bad = [c for k, c in found.items() if k not in ALLOWED_CYCLES]
    assert not bad, "import cycles:\n" + "\n".join(" -> ".join(c) for c in bad)
    stale = sorted(set(ALLOWED_CYCLES) - set(found))
    assert not stale, f"ALLOWED_CYCLES lists cycles that are gone, remove them: {stale}"


def test_layers_import_downward_only():
    graph = import_graph()
    upward = {}
    for m, deps in graph.items():
        for d in deps:
            if layer_of(d) > layer_of(m):
                upward[(m, d)] = f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
    bad = sorted(v for k, v in upward.items() if k not in ALLOWED_UPWARD)
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)
    stale = sorted(set(ALLOWED_UPWARD) - set(upward))
    assert not stale, f"ALLOWED_UPWARD lists edges that are gone, remove them: {stale}"


def test_cycle_finder_reports_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_layer_of_examples():
    names = [name for name, _ in LAYERS]
    assert names[layer_of("graphrec.baselines.config")] == "leaf"
    assert names[layer_of("graphrec.config")] == "orchestration & apps"
    assert names[layer_of("graphrec.data.split")] == "data & encoders"
    assert names[layer_of("graphrec.evaluation.fairness")] == "evaluation"
