"""A model whose platform needs a backend the tritonserver found here lacks is named with that backend, the
server's own backends and what to do, where Triton said only "unable to find backend library".

Session 45: an `--target onnxruntime` build (platform onnxruntime_onnx) under the nvidia-pytriton wheel, whose
tritonserver has the Python backend alone: deploy wrote it in silence and serve failed with Triton's line alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving import triton_install
from serving.triton_install import TritonInstall, backend_of, check_backend, explain_missing_backend

TRITON_SAID = (
    "Invalid argument: unable to find backend library for backend 'onnxruntime', try specifying runtime on the "
    "model configuration."
)


@pytest.fixture
def wheel_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        triton_install, "located_backends", lambda: ("/w/tritonserver (nvidia-pytriton wheel)", ["python"])
    )


def test_a_platform_the_server_lacks_is_one_line_naming_backends_and_what_to_do(wheel_server: None) -> None:
    with pytest.raises(QuantserveError) as caught:
        check_backend({"platform": "onnxruntime_onnx"}, "build/m (target onnxruntime)")
    assert str(caught.value) == (
        "build/m (target onnxruntime) needs Triton's 'onnxruntime' backend (platform onnxruntime_onnx), but the "
        "tritonserver found here, /w/tritonserver (nvidia-pytriton wheel), has only: python; build it with "
        "--target embedded to serve it here, or run inside NVIDIA's Triton image (/opt/tritonserver/backends)"
    )


def test_a_backend_the_server_has_passes(wheel_server: None) -> None:
    check_backend({"backend": "python"}, "build/m")
    assert backend_of({"platform": "tensorrt_plan"}) == "tensorrt"


def test_the_wheel_found_here_lists_its_backends_without_copying_them() -> None:
    located = triton_install.located_backends()
    assert located is not None and "python" in located[1]


def test_tritons_reason_is_explained_with_the_servers_backends(tmp_path: Path) -> None:
    (tmp_path / "backends" / "python").mkdir(parents=True)
    install = TritonInstall(Path("/w/tritonserver"), tmp_path / "backends")
    assert explain_missing_backend(TRITON_SAID, install) == (
        "it needs Triton's 'onnxruntime' backend, but /w/tritonserver has only: python; build it with --target "
        f"embedded to serve it here, or run inside NVIDIA's Triton image (/opt/tritonserver/backends) (Triton: "
        f"{TRITON_SAID})"
    )
    assert explain_missing_backend("model.py: no such file", install) == "model.py: no such file"
