"""Every core module sits in the import-linter layers (session 62): quantserve.files, finite_data and json_files
were in no layer, so nothing stopped them importing optimizer, serving, loadtest or quantserve.cli."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_CORE = {"__init__", "__main__", "cli"}  # the package's entry points and the application layer


def core_modules() -> set[str]:
    """quantserve's modules and subpackages below the application layer."""
    found = {path.stem for path in (ROOT / "quantserve").glob("*.py")}
    found |= {path.parent.name for path in (ROOT / "quantserve").glob("*/__init__.py")}
    return {f"quantserve.{name}" for name in found - NOT_CORE}


def layer_modules(layer: str) -> set[str]:
    return {name.strip() for name in layer.replace("|", ":").split(":")}


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def test_every_core_module_is_the_bottom_layer() -> None:
    layers = next(c["layers"] for c in contracts() if str(c["name"]).startswith("core ->"))
    assert isinstance(layers, list)
    assert core_modules() - layer_modules(layers[-1]) == set()


def test_every_core_module_is_in_the_cores_own_order() -> None:
    layers = next(c["layers"] for c in contracts() if str(c["name"]).startswith("The core's own order"))
    assert isinstance(layers, list)
    placed = set().union(*map(layer_modules, layers))
    assert core_modules() - placed == set()
    assert layers[-1] == "quantserve.errors"  # errors at the very bottom
