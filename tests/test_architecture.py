"""The layering that docs/architecture.md states holds for every module of the package,
and for the scripts in ``benchmarks/``: no import cycle, nothing imports ``cli/``, no
``sys.path`` edit, no underscored name imported from another module."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "semparts_reid"
BENCH = ROOT / "benchmarks"

# top-level unit of the package -> layer (docs/architecture.md)
LAYERS: dict[str, int] = {
    "layers": 0, "memory": 0, "metrics": 0, "errors": 0, "_version": 0,
    "models": 1, "data": 1, "hub": 1, "precision": 1, "cpu_convs": 1, "viz": 1, "_io": 1,
    "engine": 2, "inference": 2, "parsers": 2,
    "cli": 3, "experiments": 3, "__main__": 3,
}  # fmt: skip
# imports within a layer that the page names
SAME_LAYER = {("models", "hub"), ("viz", "_io"), ("precision", "cpu_convs"),
              ("engine", "inference"), ("engine", "parsers")}
SAME_LAYER |= {(unit, "errors") for unit, layer in LAYERS.items() if layer == 0}
# the one module that may import cli/: ``python -m semparts_reid``
CLI_IMPORTERS = {"cli", "__main__"}


# ------------------------------------------------------------------ the import graph
def _module_name(path: Path) -> str:
    """``semparts_reid.a.b`` for ``src/semparts_reid/a/b.py`` (``a/__init__.py``: ``a``);
    ``benchmarks.x`` for ``benchmarks/x.py``."""
    if path.is_relative_to(PKG):
        parts = ("semparts_reid", *path.relative_to(PKG).with_suffix("").parts)
    else:
        parts = ("benchmarks", path.stem)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _bench_scripts() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(BENCH.glob("*.py"))}


MODULES = _package_modules()
SCRIPTS = _bench_scripts()
KNOWN = {**MODULES, **SCRIPTS}


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (a sibling script of a benchmark
    resolves to ``benchmarks.<name>``)."""
    if node.level:
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))
    module = node.module or ""
    if path.is_relative_to(BENCH) and f"benchmarks.{module.split('.')[0]}" in SCRIPTS:
        return f"benchmarks.{module}"
    return module


def imports_of(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` for every import in the file at ``path``, at any nesting
    (function-level imports included): ``name`` is the imported name of a
    ``from module import name``, ``None`` for ``import module``."""
    importer = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = _resolve(importer, path, node)
            for alias in node.names:
                yield module, alias.name


def _targets(module: str, name: str | None) -> str:
    """The module an import loads: ``module.name`` when that is a module, else ``module``."""
    if name is not None and f"{module}.{name}" in KNOWN:
        return f"{module}.{name}"
    return module


def module_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """``{module: modules of the package (and benchmarks) it imports}``."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps = {_targets(m, n) for m, n in imports_of(path)}
        graph[module] = {d for d in deps if d in KNOWN and d != module}
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each strongly connected component with more than
    one node (or a node that imports itself), sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


# ------------------------------------------------------------------ the rules
def _unit(module: str) -> str:
    return module.split(".")[1]


def _edges() -> set[tuple[str, str]]:
    """``(unit, unit)`` imports between the package's top-level units."""
    edges = set()
    for module, deps in module_graph(MODULES).items():
        if module == "semparts_reid":
            continue  # the public API re-exports every layer
        edges.update((_unit(module), _unit(d)) for d in deps
                     if d != "semparts_reid" and _unit(d) != _unit(module))
    return edges


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def underscore_violations(importer: str, module: str, name: str | None) -> list[str]:
    """Why ``from module import name`` (or ``import module``) in ``importer`` reaches a
    private name of another module: an underscored module may be imported from inside
    its own package only, an underscored name of a module from nowhere else. Only the
    package's and the benchmarks' own modules are checked (``torch._dynamo`` is torch's
    business)."""
    full = module.split(".") + ([name] if name else [])
    if full[0] not in ("semparts_reid", "benchmarks"):
        return []
    is_module = ".".join(full) in KNOWN or name is None
    bad = []
    for i, part in enumerate(full):
        if not _private(part):
            continue
        if i == len(full) - 1 and not is_module:
            bad.append(f"{importer} imports {part} from {module}")
        elif not (importer + ".").startswith(".".join(full[:i]) + ".") or i == 0:
            bad.append(f"{importer} imports {'.'.join(full[: i + 1])} from outside its package")
    return bad


def _sys_path_edits(path: Path) -> list[int]:
    """Lines of ``path`` that change ``sys.path`` (a call on it, an assignment to it, or
    ``site.addsitedir``)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if node.func.attr == "addsitedir":
                lines.append(node.lineno)
                continue
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t for t in targets if ast.unparse(t).startswith("sys.path")), None)
        if target is not None and ast.unparse(target).startswith("sys.path"):
            lines.append(node.lineno)
    return sorted(lines)


# ------------------------------------------------------------------ tests
def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {p.name.removesuffix(".py") for p in PKG.iterdir() if p.suffix == ".py" or (
        p.is_dir() and (p / "__init__.py").is_file())} - {"__init__"}  # fmt: skip
    assert units == set(LAYERS), "update LAYERS and docs/architecture.md"


def test_no_module_imports_from_its_own_layer_or_above_except_as_documented() -> None:
    bad = sorted(
        (src, dst)
        for src, dst in _edges()
        if LAYERS[dst] > LAYERS[src]
        or (LAYERS[dst] == LAYERS[src] and LAYERS[src] != 3 and (src, dst) not in SAME_LAYER)
    )
    assert bad == [], f"imports against docs/architecture.md: {bad}"


def test_inference_never_imports_engine() -> None:
    assert ("inference", "engine") not in SAME_LAYER
    assert not any(src == "inference" and dst == "engine" for src, dst in _edges())


def test_nothing_imports_cli() -> None:
    bad = sorted(src for src, dst in _edges() if dst == "cli" and src not in CLI_IMPORTERS)
    bad += sorted(m for m, deps in module_graph(SCRIPTS).items()
                  if any(d.startswith("semparts_reid.cli") for d in deps))
    assert bad == [], f"these import cli/ (use semparts_reid.experiments): {bad}"


def test_the_checker_sees_imports() -> None:
    edges = _edges()
    assert ("engine", "memory") in edges and ("models", "hub") in edges
    assert ("__main__", "cli") in edges and ("cli", "inference") in edges
    assert ("cli", "experiments") in edges and ("experiments", "engine") in edges
    graph = module_graph(MODULES)
    assert "semparts_reid.experiments.runs" in graph["semparts_reid.experiments.jobs"]
    # a function-level import counts too
    assert "semparts_reid.engine.cluster_objective" in graph["semparts_reid.engine.objectives"]
    bench = module_graph(SCRIPTS)
    assert "benchmarks.bench_eval" in bench["benchmarks.bench_kreciprocal"]


def test_no_import_cycle_between_modules() -> None:
    """Module level, not only top-level units: a cycle inside a package counts too."""
    graph = module_graph(KNOWN)
    assert len(graph) > 100
    assert find_cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"a"}}, [["a"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c", "a"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_the_cycle_finder_on_small_graphs(
    graph: dict[str, set[str]], cycles: list[list[str]]
) -> None:
    assert find_cycles(graph) == cycles


def test_the_cycle_finder_sees_a_cycle_written_as_imports(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "semparts_reid"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "__init__.py").write_text("")
    (pkg / "engine" / "a.py").write_text("from .b import B\n")
    (pkg / "engine" / "b.py").write_text("def f():\n    from . import a\n")
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "PKG", pkg)
    modules = {me._module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    monkeypatch.setattr(me, "KNOWN", modules)
    assert me.find_cycles(me.module_graph(modules)) == [
        ["semparts_reid.engine.a", "semparts_reid.engine.b"]]


def test_no_benchmark_edits_sys_path() -> None:
    bad = {p.name: lines for p in SCRIPTS.values() if (lines := _sys_path_edits(p))}
    assert bad == {}, f"benchmarks that edit sys.path (the package is installed): {bad}"


def test_no_underscored_name_imported_from_another_module() -> None:
    bad = [v for module, path in KNOWN.items() for m, n in imports_of(path)
           for v in underscore_violations(module, m, n)]
    assert bad == [], f"make the name public (benchmarks: semparts_reid.experiments): {bad}"


@pytest.mark.parametrize(
    ("importer", "module", "name", "ok"),
    [
        ("semparts_reid.metrics.rerank", "semparts_reid.metrics", "_tiles", True),
        ("semparts_reid.cli.demo", "semparts_reid._io", "atomic_write_text", True),
        ("benchmarks.ablate_triplet", "semparts_reid._io", "atomic_write_text", False),
        ("benchmarks.bench_kreciprocal", "semparts_reid.metrics", "_tiles", False),
        ("benchmarks.bench_kreciprocal", "benchmarks.bench_eval", "_peak_rss_mib", False),
        ("benchmarks.ablate_triplet", "semparts_reid.cli.demo", "_config", False),
        ("semparts_reid.cli.demo", "semparts_reid.engine.losses", "_auto_part_targets", False),
        ("semparts_reid.engine.step", "semparts_reid.metrics._tiles", "np_of", False),
        ("benchmarks.bench_eval", "semparts_reid.metrics", "evaluate_cmc_map", True),
        ("semparts_reid.inference.extractor", "torch._dynamo", None, True),
    ],
)
def test_the_underscore_rule(importer: str, module: str, name: str, ok: bool) -> None:
    assert (underscore_violations(importer, module, name) == []) is ok


def test_the_sys_path_check(tmp_path: Path) -> None:
    script = tmp_path / "bench_x.py"
    script.write_text("import sys, site\nsys.path.insert(0, 'src')\nsys.path += ['x']\n"
                      "sys.path = []\nsite.addsitedir('y')\nprint(sys.path)\n")
    assert _sys_path_edits(script) == [2, 3, 4, 5]
