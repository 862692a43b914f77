"""The import graph of bounceproc (and workers/) has no cycle, and its arrows point down the layers.

Every `import` is counted, at module level and inside functions (a function-level import is a
dependency all the same: it only runs later). Importing `a.b.c` also runs the packages `a.b` and
`a`, so their `__init__` modules count as imported too. Read from the source with `ast`; nothing
is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bounceproc", "workers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _targets(node: ast.AST, here: str, is_package: bool, known: set[str]) -> list[str]:
    """The project modules one import statement loads (its packages included)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = here.split(".") if is_package else here.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names]
    found = []
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known:
                found.append(prefix)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_targets(node, name, path.name == "__init__.py", known))
        # A package's own __init__ and its ancestors run first anyway: not a dependency to report.
        graph[name] = {t for t in edges if t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_function_level_imports():
    graph = import_graph()
    # cli/serve.py imports the application layer only inside functions.
    assert "bounceproc.app.intake" in graph["bounceproc.entrypoints.cli.serve"]
    assert "bounceproc.config" in graph["bounceproc.bootstrap"]


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "workers":
        return "workers"
    if len(parts) == 1:
        return "package"
    if parts[1] == "__main__":    # `python -m bounceproc`: the CLI
        return "entrypoints"
    if parts[1] in ("dbsetup", "deployment"):    # wiring, beside bootstrap.py
        return "bootstrap"
    if parts[1] == "logs":                       # logging set-up: imports nothing of ours
        return "config"
    return parts[1]            # domain, storage, outbound, app, entrypoints, bootstrap, config


# What each layer may import from the project (besides itself).
ALLOWED = {
    "domain": set(),
    "config": set(),
    "storage": {"config", "domain", "bootstrap"},
    "outbound": {"config", "domain", "storage", "bootstrap"},
    "bootstrap": {"config", "domain", "storage"},
    "app": {"config", "domain", "storage", "outbound", "bootstrap"},
    # The bundled sending core (bounceproc/mta/): its own room of adapters (listener, spool,
    # delivery), driven by the entry points, driving the use cases like they do.
    "mta": {"config", "domain", "storage", "outbound", "bootstrap", "app"},
    "entrypoints": {"config", "domain", "storage", "outbound", "bootstrap", "app", "mta"},
    # Celery task bodies drive the application like the other entry points (the API's import
    # job runs its body from entrypoints/http/imports.py).
    "workers": {"config", "domain", "storage", "outbound", "bootstrap", "app", "entrypoints", "mta"},
}


def test_layers_point_down():
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        layer = _layer(module)
        if layer not in ALLOWED:
            continue
        for t in sorted(targets):
            other = _layer(t)
            if other != layer and other != "package" and other not in ALLOWED[layer]:
                wrong.append(f"{module} ({layer}) imports {t} ({other})")
    assert wrong == []


def test_every_module_has_a_layer():
    layers = {_layer(m) for m in import_graph()}
    assert layers - {"package"} <= set(ALLOWED), layers
