"""Fixtures for the serving tests: the embedded layout for deploy, a tiny build folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_models import embedded_target, make_build_dir


@pytest.fixture(scope="module")
def embedded_layout() -> Iterator[None]:
    """Make `deploy` resolve target "embedded" (the real one once it exists)."""
    target = embedded_target()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("serving.deploy.get_target", lambda name: target)
        yield


@pytest.fixture
def dense_build(tmp_path: Path) -> Path:
    return make_build_dir(tmp_path / "build" / "dense")
