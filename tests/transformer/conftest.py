"""One trained text encoder per session: the torch model, its exported ONNX file and token data files.

Training takes 20–40 s on its one torch thread (`text_encoder.train`); everything else reuses it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples import text_encoder
from quantserve.data import TensorData


@dataclass
class TrainedEncoder:
    """The trained model and where its exported ONNX and data files live."""

    model: Any
    onnx_path: Path
    calib_path: Path
    eval_path: Path
    calib: TensorData
    held_out: TensorData


@pytest.fixture(scope="module", autouse=True)
def _isolated_calibration_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Calibration results go to a cache under tmp, never ~/.cache; module-scoped so module fixtures see it."""
    patch = pytest.MonkeyPatch()
    patch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path_factory.mktemp("calib-cache")))
    yield
    patch.undo()


def export_encoder(module: Any, name: str, options: dict[str, Any], path: Path) -> Path:
    """`module` (the encoder, or a model built on it) exported to ONNX at `path` from the encoder's example inputs."""
    from optimizer.export import export_onnx
    from optimizer.source import ModelSource

    source = ModelSource(
        kind="torch", name=name, module=module, example_inputs=text_encoder.example_inputs(), options=options
    )
    return export_onnx(source, path).path


@pytest.fixture(scope="session")
def encoder_exporter() -> Any:
    """`export_encoder`, for tests that export a model built on the trained encoder."""
    return export_encoder


@pytest.fixture(scope="session")
def trained_encoder(tmp_path_factory: pytest.TempPathFactory) -> TrainedEncoder:
    # torch's threads: one in each of `make test`'s workers (tests/conftest.py sets OMP_NUM_THREADS), else a core each
    root = tmp_path_factory.mktemp("text-encoder")
    model = _trained_model(tmp_path_factory)
    exported_path = export_encoder(model, "text_encoder", text_encoder.export_options(), root / "exported.onnx")
    calib = text_encoder.make_token_data(256, seed=7)
    held_out = text_encoder.make_token_data(400, seed=8)
    return TrainedEncoder(
        model=model,
        onnx_path=exported_path,
        calib_path=calib.save(root / "calib.npz"),
        eval_path=held_out.save(root / "eval.npz"),
        calib=calib,
        held_out=held_out,
    )


def _trained_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The encoder trained with seed 0. `make test`'s two worker processes share one training (pytest-xdist's
    recipe for a session fixture run once: a file lock in the folder the workers' temp folders share): the first
    trains and saves its weights, the other loads them. Each trained its own before, 30-45 s of the run apiece."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return text_encoder.train(seed=0)
    import torch
    from filelock import FileLock

    weights = tmp_path_factory.getbasetemp().parent / "text-encoder-seed0.pt"
    with FileLock(f"{weights}.lock"):
        if weights.is_file():
            model = text_encoder.build_model()
            model.load_state_dict(torch.load(weights))
            return model.eval()
        model = text_encoder.train(seed=0)
        torch.save(model.state_dict(), weights)
        return model
