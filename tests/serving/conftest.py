"""Fixtures for the serving tests: a tiny build folder for the embedded target."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import make_build_dir


@pytest.fixture
def dense_build(tmp_path: Path) -> Path:
    return make_build_dir(tmp_path / "build" / "dense")
