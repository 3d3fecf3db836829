"""The layers of ARCHITECTURE.md, read from the imports themselves (ast), so they stay true.

Four rules: no import cycle among ``s4`` modules; no folder of more than 16 modules; the
server imports nothing of the codec layer; the codec layer imports no HTTP, no metrics
library and nothing of the server, the stores or the metrics module.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a cycle
that only a type checker follows is still two modules that cannot be understood apart.
An edge goes to the module an import names (``from s4.codec.format import frame`` names
``s4.codec.format.frame``); a package's ``__init__`` re-exporting its children is an edge
from the package to each child, and a child importing a sibling does not go through the
package, so re-exports never count as cycles.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "s4"
MAX_MODULES_PER_FOLDER = 16


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, pathlib.Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve_relative(module: str, level: int, name: str | None, is_package: bool) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str) -> set[str]:
    """Every module or top-level package ``module`` imports, with s4 names resolved to modules."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve_relative(module, node.level, node.module, path.name == "__init__.py")
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in MODULES else target)
    return found


GRAPH: dict[str, set[str]] = {m: {t for t in imports_of(m) if t in MODULES and t != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checker_finds_a_cycle_and_resolves_relative_imports() -> None:
    """The rules below can only fail if the checker sees what they look for."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _resolve_relative("s4.store.compressing.store", 1, "staging", False) == "s4.store.compressing.staging"
    assert _resolve_relative("s4.store.compressing", 2, "base", True) == "s4.store.base"
    assert "s4.codec.base" in GRAPH["s4.codec.registry"]


def test_no_import_cycle_among_s4_modules() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("folder", sorted({p.parent for p in MODULES.values()}), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_folder_holds_more_than_16_modules(folder: pathlib.Path) -> None:
    modules = sorted(p.name for p in folder.glob("*.py"))
    assert len(modules) <= MAX_MODULES_PER_FOLDER, modules


def test_the_server_knows_no_codec() -> None:
    offenders = {
        m: sorted(t for t in imports_of(m) if _under(t, "s4.codec")) for m in MODULES if _under(m, "s4.server")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_the_codec_layer_knows_no_http_metrics_server_or_store() -> None:
    forbidden = ("aiohttp", "prometheus_client", "s4.server", "s4.store", "s4.metrics")
    offenders = {
        m: sorted(t for t in imports_of(m) if any(_under(t, f) for f in forbidden))
        for m in MODULES
        if _under(m, "s4.codec")
    }
    assert {m: t for m, t in offenders.items() if t} == {}
