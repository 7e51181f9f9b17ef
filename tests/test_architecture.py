"""The layering that docs/architecture.md states holds for every module of the package."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "semparts_reid"

# top-level unit of the package -> layer (docs/architecture.md)
LAYERS: dict[str, int] = {
    "layers": 0, "memory": 0, "metrics": 0, "errors": 0, "_version": 0,
    "models": 1, "data": 1, "hub": 1, "precision": 1, "cpu_convs": 1, "viz": 1, "_io": 1,
    "engine": 2, "inference": 2, "parsers": 2,
    "cli": 3, "__main__": 3,
}  # fmt: skip
# imports within a layer that the page names
SAME_LAYER = {("models", "hub"), ("viz", "_io"), ("precision", "cpu_convs"),
              ("engine", "inference")}
SAME_LAYER |= {(unit, "errors") for unit, layer in LAYERS.items() if layer == 0}


def _imports(path: Path) -> set[str]:
    """Top-level package units that the module at ``path`` imports (any nesting)."""
    rel = path.relative_to(PKG).with_suffix("")
    pkg = list(rel.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # "from . import x" at the top of the package
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("semparts_reid."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("semparts_reid.")
            )
    return found


def _edges() -> set[tuple[str, str]]:
    edges = set()
    for path in PKG.rglob("*.py"):
        unit = path.relative_to(PKG).parts[0].removesuffix(".py")
        if unit == "__init__":
            continue  # the public API re-exports every layer
        edges.update((unit, dst) for dst in _imports(path) if dst != unit)
    return edges


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


def test_the_checker_sees_imports() -> None:
    edges = _edges()
    assert ("engine", "memory") in edges and ("models", "hub") in edges
    assert ("__main__", "cli") in edges and ("cli", "inference") in edges
