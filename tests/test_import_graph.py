"""The genbench package's import graph (every import of a genbench module, at any depth) has no cycle."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "genbench"


def module_name(path: Path) -> str:
    """genbench.x.y for platform/genbench/x/y.py; a package's __init__.py is the package itself."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`: imports for annotations only, never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)  # what holds statements; expressions hold none


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth (functions, classes, try blocks), outside the body of an
    `if TYPE_CHECKING:` block (its `else:` branch runs, so it counts)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        children = node.orelse if _type_checking(node) else ast.iter_child_nodes(node)  # type: ignore[attr-defined]
        stack.extend(c for c in children if isinstance(c, STATEMENTS))
    return found


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The genbench modules one import statement loads: `from genbench.x import y` is genbench.x.y when y is a
    submodule, else genbench.x; relative imports resolve against the importing module's package."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "genbench"}
    base = node.module or ""
    if node.level:
        package = here.split(".") if is_package else here.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    if base.split(".")[0] != "genbench":
        return set()
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}


def _imports_every_submodule(tree: ast.AST) -> bool:
    """A package that imports each of its modules by walking `pkgutil.iter_modules(__path__)` (families/configs
    registers every family so): an import of each of them, though no import statement names them."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "iter_modules"
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "__path__"
        for node in ast.walk(tree)
    )


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the genbench modules it imports (itself excluded)."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set().union(*(_targets(n, name, is_package, set(files)) for n in _imports(tree)))
        if is_package and _imports_every_submodule(tree):
            edges |= {m for m in files if m.rpartition(".")[0] == name and not m.rpartition(".")[2].startswith("_")}
        graph[name] = {m for m in edges if m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle as [a, b, ..., a], or [] when the graph has none (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state and nxt in graph:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return []


def test_graph_resolves_absolute_relative_and_submodule_imports() -> None:
    graph = import_graph()
    assert "genbench.families.configs" in graph["genbench.families"]  # import genbench.families.configs
    assert "genbench.families.spec" in graph["genbench.families"]  # from genbench.families.spec import ...
    assert "genbench.data.base" in graph["genbench.data"]  # from genbench.data import base: a submodule, in a function
    assert "genbench.data.names" in graph["genbench.data"]  # from genbench.data.names import DATASETS: an attribute
    assert "genbench.families.configs.gan" in graph["genbench.families.configs"]  # pkgutil.iter_modules(__path__)


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_type_checking_imports_are_not_edges_and_relative_imports_resolve() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import genbench.a\nelse:\n"
        "    import genbench.b\ndef f():\n    from genbench import c\n"
        "class K:\n    from . import d\n    from ..e import f\n"
    )
    modules = {"genbench.c", "genbench.x.d"}
    targets = set().union(*(_targets(n, "genbench.x.z", False, modules) for n in _imports(tree)))
    assert targets == {"genbench.b", "genbench.c", "genbench.x.d", "genbench.e"}
    assert set().union(*(_targets(n, "genbench.x", True, modules) for n in _imports(ast.parse("from . import d")))) == {
        "genbench.x.d"
    }  # in a package's __init__.py, '.' is the package itself


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)
