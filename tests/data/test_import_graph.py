"""The modules of ``semparts_reid.data`` import without a cycle, each one on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "src" / "semparts_reid" / "data"
PREFIX = "semparts_reid.data"


def _module_name(path: Path) -> str:
    rel = path.relative_to(DATA).with_suffix("")
    parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
    return ".".join([PREFIX, *parts])


MODULES = {_module_name(p): p for p in sorted(DATA.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> set[str]:
    """The modules of the data package that ``node`` (in ``module`` at ``path``) imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # "from . import render" names a submodule; "from .x import name" names module x
    found = {f"{target}.{a.name}" for a in node.names} & set(MODULES)
    if target in MODULES and not found:
        found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> modules of the data package it imports (anywhere in its body).

    The package ``__init__`` (``semparts_reid.data``) re-exports everything and is left
    out: it is the one node allowed to import every module.
    """
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        if module == PREFIX:
            continue
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                edges |= _resolve(module, path, node)
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in MODULES}
        graph[module] = edges - {module, PREFIX}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_data_package_has_no_import_cycle() -> None:
    graph = _graph()
    assert _find_cycle(graph) is None, f"import cycle: {' -> '.join(_find_cycle(graph) or [])}"


def test_the_cycle_check_sees_the_imports_and_finds_cycles() -> None:
    graph = _graph()
    d = PREFIX
    # datasets -> synthetic -> market_layout, and datasets -> market_layout
    assert f"{d}.synthetic" in graph[f"{d}.datasets"]
    assert f"{d}.market_layout" in graph[f"{d}.datasets"]
    assert f"{d}.market_layout" in graph[f"{d}.synthetic.generate"]
    assert f"{d}.synthetic.render" in graph[f"{d}.synthetic.generate"]
    assert f"{d}.synthetic.generate" in graph[f"{d}.synthetic"]
    assert f"{d}.datasets" not in graph[f"{d}.synthetic.generate"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


_IMPORT_EACH = """
import importlib, sys, traceback
failures = []
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if (n + ".").startswith("semparts_reid.data.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception:
        failures.append(module + ": " + traceback.format_exc())
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_each_module_imports_alone() -> None:
    """Each module imported first, on a clean slate of the data package: no cycle bites.

    One interpreter for all modules (third-party imports stay cached); the data package's
    modules are dropped from ``sys.modules`` before each import.
    """
    modules = sorted(m for m in MODULES if m != PREFIX)
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *modules], capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
