"""Builds made with `optimize --unbatched` for the serving tests, from the tiny models of tests/optimizer."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings

MODELS = Path(__file__).resolve().parents[1] / "optimizer" / "unbatched_models.py"


def unbatched_models() -> ModuleType:
    """tests/optimizer/unbatched_models.py, loaded by path (the two test folders are not on one sys.path)."""
    spec = importlib.util.spec_from_file_location("unbatched_models", MODELS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unbatched_build(root: Path, kind: str = "gated") -> Path:
    """An FP32 --unbatched build of the `kind` model ("gated": If on the peak, [1, 32] → [1, 8]; "nms": [K, 3]),
    its calibration data saved beside it as `root/<kind>.npz`."""
    models = unbatched_models()
    root.mkdir(parents=True, exist_ok=True)
    model = getattr(models, f"{kind}_model")(root / f"{kind}.onnx")
    data = getattr(models, f"{kind}_data")(root / f"{kind}.npz", 40)
    options = OptimizeOptions(
        model, data, "fp32", "embedded", root / f"build_{kind}", speed=SpeedSettings(enabled=False), unbatched=True
    )
    optimize(options)
    return root / f"build_{kind}"
