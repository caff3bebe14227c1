"""docs/architecture.md's core row names every module of the core (`quantserve/*.py`).

Before: it listed errors, artifact, data, runner and metrics; checks, files, finite_data and json_files were
missing (session 62)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_core_row_names_every_core_module() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| core |"))
    packages = row.split("|")[2]
    named = {name.lstrip(".").removeprefix("quantserve.") for name in re.findall(r"`([\w.]+)`", packages)}
    modules = {path.stem for path in (REPO / "quantserve").glob("*.py")} - {"__init__", "__main__"}
    modules |= {path.name for path in (REPO / "quantserve").iterdir() if (path / "__init__.py").is_file()} - {"cli"}
    assert named == modules
