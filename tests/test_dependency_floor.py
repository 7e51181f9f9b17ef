"""The torch / torchvision floors in pyproject.toml are the true ones.

A table maps API usages to the first torch release that has them. The package source is
searched for every pattern: the declared floor must be at least the newest release a
found usage needs (else ``pip`` would install a torch the code cannot run on), and
exactly that release (else the floor is set higher than the code requires). The
torchvision floor must be the release paired with the torch floor.

When a new API is used, add it to ``API_FLOORS`` with the release that introduced it;
the test then tells whether pyproject.toml must move.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "semparts_reid"


class ApiFloor(NamedTuple):
    pattern: str  # a regex over the source text (re.DOTALL)
    torch: str  # the first torch release with this API
    example: str  # a usage the pattern must match (keeps the table honest)


# An argument list with at most one level of nested parentheses, e.g. ``(m, (x,), f, k=1)``.
_ARGS = r"(?:[^()]|\([^()]*\))*?"

API_FLOORS: dict[str, ApiFloor] = {
    "torch.onnx.export(dynamo=...)": ApiFloor(
        rf"torch\.onnx\.export\({_ARGS}\bdynamo\s*=", "2.5",
        "torch.onnx.export(\n    m, (x,), f, opset_version=17, dynamo=False,\n)",
    ),
    "torch.nn.attention.flex_attention": ApiFloor(
        r"torch\.nn\.attention\.flex_attention\b", "2.5",
        "from torch.nn.attention.flex_attention import flex_attention",
    ),
    "torch.is_autocast_enabled(device_type)": ApiFloor(
        r"torch\.is_autocast_enabled\(\s*[^)\s]", "2.4", 'torch.is_autocast_enabled("cpu")',
    ),
    "torch.get_autocast_dtype(device_type)": ApiFloor(
        r"torch\.get_autocast_dtype\(", "2.4", 'torch.get_autocast_dtype("cpu")',
    ),
    "torch.serialization.add_safe_globals": ApiFloor(
        r"torch\.serialization\.add_safe_globals\b", "2.4",
        "torch.serialization.add_safe_globals([Foo])",
    ),
    "torch.amp.custom_fwd / custom_bwd": ApiFloor(
        r"torch\.amp\.custom_(?:fwd|bwd)\b", "2.4", '@torch.amp.custom_fwd(device_type="cuda")',
    ),
    "torch.library.custom_op": ApiFloor(
        r"torch\.library\.custom_op\b", "2.4", '@torch.library.custom_op("ns::f", mutates_args=())',
    ),
    "torch.amp.GradScaler(device)": ApiFloor(
        r"torch\.amp\.GradScaler\(", "2.3", 'torch.amp.GradScaler("cuda", enabled=True)',
    ),
    "torch.nn.attention.sdpa_kernel": ApiFloor(
        r"torch\.nn\.attention\b(?!\.flex_attention)", "2.3",
        "with torch.nn.attention.sdpa_kernel(SDPBackend.MATH):",
    ),
    "torch.compiler": ApiFloor(r"torch\.compiler\.", "2.1", "torch.compiler.reset()"),
    "torchvision.transforms.v2 (stable)": ApiFloor(
        r"torchvision\.transforms\.v2\b", "2.1", "from torchvision.transforms.v2 import Resize",
    ),
    "torch.load(mmap=...)": ApiFloor(
        rf"torch\.load\({_ARGS}\bmmap\s*=", "2.1", "torch.load(p, mmap=True)",
    ),
    "torch.compile": ApiFloor(r"torch\.compile\(", "2.0", "torch.compile(model)"),
    "torch.load(weights_only=...)": ApiFloor(
        rf"torch\.load\({_ARGS}\bweights_only\s*=", "1.13",
        "torch.load(p, map_location='cpu', weights_only=True)",
    ),
    "torch.autocast(device_type)": ApiFloor(
        r"torch\.autocast\(", "1.10", 'torch.autocast("cpu", dtype=torch.bfloat16)',
    ),
    "torch.inference_mode": ApiFloor(r"torch\.inference_mode\(", "1.9", "torch.inference_mode()"),
}


def _pairing_torchvision(torch_floor: Version) -> Version:
    """The torchvision release built against a torch 2.x release (2.1 -> 0.16, 2.5 -> 0.20)."""
    assert torch_floor.major == 2, f"no pairing table for torch {torch_floor}"
    return Version(f"0.{torch_floor.minor + 15}")


def _floor(name: str) -> Version:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for spec in data["project"]["dependencies"]:
        req = Requirement(spec)
        if req.name == name:
            floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
            assert len(floors) == 1, f"{spec!r}: expected one '>=' floor"
            return floors[0]
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def _source() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def _found() -> dict[str, list[str]]:
    """API name -> the files (relative paths) that use it."""
    found: dict[str, list[str]] = {}
    for path, text in _source().items():
        for name, api in API_FLOORS.items():
            if re.search(api.pattern, text, flags=re.DOTALL):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("name", sorted(API_FLOORS))
def test_each_pattern_matches_its_example(name: str) -> None:
    api = API_FLOORS[name]
    assert re.search(api.pattern, api.example, flags=re.DOTALL), (name, api.example)


def test_patterns_do_not_match_older_forms() -> None:
    assert not re.search(API_FLOORS["torch.is_autocast_enabled(device_type)"].pattern,
                         "torch.is_autocast_enabled()")
    assert not re.search(API_FLOORS["torch.onnx.export(dynamo=...)"].pattern,
                         "torch.onnx.export(m, (x,), f, opset_version=17)\nrun(dynamo=True)",
                         flags=re.DOTALL)


def test_torch_floor_covers_every_api_the_package_uses() -> None:
    floor = _floor("torch")
    found = _found()
    too_new = {n: (API_FLOORS[n].torch, files) for n, files in found.items()
               if Version(API_FLOORS[n].torch) > floor}
    assert not too_new, (
        f"pyproject.toml declares torch>={floor}, but the package uses newer APIs "
        f"(name: (first torch release, files)): {too_new}"
    )


def test_torch_floor_is_needed_by_some_api() -> None:
    floor = _floor("torch")
    found = _found()
    needed = max(Version(API_FLOORS[n].torch) for n in found)
    assert floor == needed, (
        f"pyproject.toml declares torch>={floor}; the newest API the package uses needs "
        f"{needed} ({[n for n in found if Version(API_FLOORS[n].torch) == needed]}), "
        "and the floor must be exactly that"
    )


def test_torchvision_floor_pairs_with_torch_floor() -> None:
    torch_floor = _floor("torch")
    assert _floor("torchvision") == _pairing_torchvision(torch_floor), (
        f"torch>={torch_floor} pairs with torchvision>={_pairing_torchvision(torch_floor)}"
    )
