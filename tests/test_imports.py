"""symgrad's modules import each other without circles, at module level and inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "symgrad"

#: Circles known and being broken elsewhere, as the edge that closes each: remove an edge when
#: its circle is gone (test_known_circles_are_still_there says when).
KNOWN_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" or \
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The symgrad modules that ``name`` imports anywhere (TYPE_CHECKING blocks aside)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from . import rules` imports the module symgrad.rules
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    if name == "symgrad":  # the package face's lazy table imports these on first use
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
                found.update(f"symgrad.{ast.literal_eval(v)}" for v in node.value.values)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) - {b for a, b in KNOWN_EDGES if a == name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_circle():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_walk_sees_imports_of_every_kind():
    """The walk itself: relative, absolute, function-level and `from . import module` imports count."""
    graph = _graph()
    assert "symgrad.compiler" in graph["symgrad.builder"]        # inside a function
    assert "symgrad.errors" in graph["symgrad.builder"]          # module level, relative
    assert "symgrad.emit.common" in graph["symgrad.emit.c"]      # `from ..common import output_rules`
    assert "symgrad.rules" in graph["symgrad.emit.c"]            # `from ... import rules`
    assert "symgrad.pipeline" in graph["symgrad"]                # the face's lazy table
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_known_circles_are_still_there():
    """A known edge that no longer closes a circle must leave KNOWN_EDGES."""
    for source, target in KNOWN_EDGES:
        graph = _graph()
        graph[source] = graph[source] | {target}
        assert _cycle(graph) is not None, f"{source} -> {target} closes no circle any more; remove it"
