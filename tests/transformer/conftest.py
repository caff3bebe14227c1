"""One trained text encoder per session: the torch model, its exported ONNX file and token data files.

Training takes about 10 s on 2 cores (30 s when the cores are shared); everything else reuses it.
"""

from __future__ import annotations

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
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("text-encoder")
    model = text_encoder.train(seed=0)
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
