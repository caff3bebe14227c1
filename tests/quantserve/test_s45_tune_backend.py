"""`quantserve tune` refuses, before any server starts, a build whose platform the tritonserver found here cannot
load, and `deploy` warns of it.

Session 45: an `--target onnxruntime` build (platform onnxruntime_onnx) under the nvidia-pytriton wheel (Python
backend only) ran every trial to "unable to find backend library for backend 'onnxruntime'" before tune said
every trial failed; deploy wrote it with no word."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tune import loadtest_models

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving import triton_install

WHEEL = "/w/tritonserver (nvidia-pytriton wheel)"


@pytest.fixture
def onnxruntime_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny MLP as `optimize --target onnxruntime` records it, under a server with the Python backend alone."""
    monkeypatch.setattr(triton_install, "located_backends", lambda: (WHEEL, ["python"]))
    models = loadtest_models()
    models.labeled_data(64, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    build = Path(models.make_build_dir(tmp_path / "build" / "mlp_ort"))
    manifest = Manifest.load(build)
    manifest.target = "onnxruntime"
    manifest.extra["onnxruntime"] = {"device": "cpu", "tensorrt_accelerator": False}
    manifest.save(build)
    return build


def needs_line(build: Path) -> str:
    return (
        f"needs Triton's 'onnxruntime' backend (platform onnxruntime_onnx), but the tritonserver found here, {WHEEL}, "
        "has only: python; build it with --target embedded to serve it here, or run inside NVIDIA's Triton image "
        "(/opt/tritonserver/backends)"
    )


def test_tune_refuses_the_build_before_any_trial(
    tmp_path: Path, onnxruntime_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, out = tmp_path / "repo", tmp_path / "out"
    argv = ["tune", str(onnxruntime_build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "50"]
    assert main([*argv, "--name", "m", "--repo", str(repo), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"quantserve: error: {onnxruntime_build} (target onnxruntime) {needs_line(onnxruntime_build)}"
    assert not repo.exists() and not out.exists()


def test_deploy_writes_it_with_a_warning(
    tmp_path: Path, onnxruntime_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written all the same: the repository may be served from NVIDIA's image."""
    assert main(["deploy", str(onnxruntime_build), "--repo", str(tmp_path / "repo"), "--name", "m"]) == 0
    assert f"warning: {onnxruntime_build} {needs_line(onnxruntime_build)}" in capsys.readouterr().err
    assert (tmp_path / "repo" / "m" / "config.pbtxt").is_file()
