"""Fixtures for the optimizer tests: tiny generated models and data under tmp_path, a private calibration cache."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FACTORY = "make_tiny_models:tiny_cnn_factory"


@pytest.fixture(scope="session", autouse=True)
def assets_on_path() -> Iterator[None]:
    """Make `make_tiny_models` importable so factory strings like FACTORY resolve."""
    sys.path.insert(0, str(ASSETS))
    yield
    sys.path.remove(str(ASSETS))


@pytest.fixture(autouse=True)
def calib_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own calibration cache folder."""
    folder = tmp_path / "calib-cache"
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    import make_tiny_models

    return make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def calib_npz(tmp_path: Path) -> Path:
    """400 rows: optimize holds out 268 of them, the fewest on which full top-1 agreement shows the 0.99 budget."""
    import make_tiny_models

    return make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=400)
