"""The import graph of golden has no circle: a module never imports, at its top or
inside a function, a module that imports it back. The graph is read from the source
with ast, so an import inside a function, which runs late, counts as well."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "golden"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The golden modules ``path`` imports anywhere in its body; ``from golden import
    x`` counts as an import of ``golden.x`` where that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in modules else node.module for n in names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, modules) for path in paths}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as a path that ends where it starts, or None."""
    done, path = set(), []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if found := visit(target):
                return found
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if found := visit(node):
            return found
    return None


def test_the_cycle_finder_finds_a_circle_and_only_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_reader_counts_imports_inside_functions():
    graph = import_graph()
    assert "golden.runner" in graph["golden.report"]  # imported in stored_or_quick
    assert "golden.experiments" in graph["golden.runner"]


def test_golden_has_no_import_circle():
    assert cycle(import_graph()) is None


def test_experiments_do_not_import_the_runner():
    graph = import_graph()
    reached, todo = set(), ["golden.experiments"]
    while todo:
        for target in graph[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    assert "golden.runner" not in reached and "golden.cli" not in reached
