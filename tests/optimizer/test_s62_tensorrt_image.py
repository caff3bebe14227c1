"""Where TensorRT is missing, `--target tensorrt` names the project's optimizer image (session 62): it said "build
inside nvcr.io/nvidia/tritonserver:24.10-py3", an image without TensorRT's Python API, which the Dockerfile adds
only in its `optimizer` stage (`quantserve:optimizer` in docs/production.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer import tensorrt as trt_target
from quantserve.errors import QuantserveError

ROOT = Path(__file__).resolve().parents[2]
BUILD = "docker build --target optimizer -t quantserve:optimizer ."


def test_the_refusal_names_the_optimizer_image_and_its_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_target, "tensorrt_missing_reason", lambda: "the 'tensorrt' Python module is not installed")
    with pytest.raises(QuantserveError) as caught:
        trt_target.probe_runtime()
    message = str(caught.value)
    assert "\n" not in message
    assert "inside the project's optimizer image quantserve:optimizer" in message
    assert f"({BUILD}; see docs/production.md)" in message
    assert "nvcr.io" not in message


def test_the_named_build_is_the_one_the_docs_and_dockerfile_give() -> None:
    assert BUILD in (ROOT / "docs" / "production.md").read_text()
    assert BUILD in (ROOT / "Dockerfile").read_text()
    assert "FROM serve AS optimizer" in (ROOT / "Dockerfile").read_text()
