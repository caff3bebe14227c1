"""The serving image's dependencies are what docs/production.md says, and include optuna.

Before: optuna was in neither pyproject's dependencies nor requirements-serving.txt (the image could not run
`quantserve tune`), and the doc named 3 of the 33 packages the image leaves out of the lock (session 62)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def pins(path: Path) -> set[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(line.split("==")[0]) for line in lines if "==" in line}


def test_the_package_and_the_image_install_optuna() -> None:
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"optuna\b", dep) for dep in runtime)
    assert "optuna" in pins(REPO / "requirements-serving.txt")


def test_the_doc_names_exactly_the_packages_the_image_leaves_out() -> None:
    doc = (REPO / "docs" / "production.md").read_text()
    start = doc.index("from `requirements-serving.txt` — ") + len("from `requirements-serving.txt` — ")
    said = doc[start : doc.index("stays too", start)]
    named = {canonicalize_name(name) for name in re.findall(r"`([A-Za-z0-9_.-]+)`", said)}
    left_out = pins(REPO / "requirements.lock") - pins(REPO / "requirements-serving.txt")
    assert named - {"requirements-lock", "tritonserver"} == left_out | {
        "optuna",
        "pytest",
    }
