"""No import cycles inside the package.

The graph is built from the source (the AST of every module), not by importing it: every
``import`` and ``from ... import`` anywhere in a module, at module level or inside a function,
is an edge, relative imports are resolved against the module's package, ``from pkg import name``
points at ``pkg.name`` when that is a module (else at ``pkg``, its ``__init__``). The parent
packages that Python imports first are not edges: they are already being imported. Imports under
``if TYPE_CHECKING:`` never run and are left out. The strongly connected components of that
graph (Tarjan's algorithm) with more than one module, or a module importing itself, are cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "napari_celldenoise"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (packages by ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join([package, *parts])] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (see the module docstring)."""
    modules = module_names() if modules is None else modules
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in modules)
                continue
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    targets.add(sub)
                elif source in modules:
                    targets.add(source)
        graph[name] = targets
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (R. Tarjan, "Depth-first search and linear graph
    algorithms", SIAM J. Comput. 1(2), 1972), iterative so deep chains need no recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
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
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph.get(c[0], ())]


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """One path around the cycle, ``a -> b -> a``, inside the component."""
    members = set(component)
    start = component[0]
    # breadth-first from start's successors back to start, inside the component
    paths = {t: [start, t] for t in graph[start] if t in members}
    frontier = list(paths)
    while start not in paths and frontier:
        nxt = []
        for node in frontier:
            for t in sorted(graph[node]):
                if t in members and t not in paths:
                    paths[t] = [*paths[node], t]
                    nxt.append(t)
        frontier = nxt
    return " -> ".join(paths.get(start, component))


def test_graph_builder_resolves_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
        "def g():\n    import pkg.a\n"
    )
    graph = import_graph(module_names(pkg, "pkg"))
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}
    (cycle,) = cycles(graph)
    assert cycle == ["pkg.a", "pkg.c", "pkg.sub.b"]
    assert describe(cycle, graph) == "pkg.a -> pkg.sub.b -> pkg.c -> pkg.a"
    (pkg / "c.py").write_text("import os\n")
    assert cycles(import_graph(module_names(pkg, "pkg"))) == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # the whole package was read
    found = [describe(c, graph) for c in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)
