"""FP16 on `--target onnxruntime` only where ONNX Runtime's TensorRT accelerator is on (session 62).

Without it the target deploys the ONNX to Triton's ONNX Runtime backend on the CPU, which runs the FP32 graph:
`optimize --precision fp16 --target onnxruntime` exited 0, printed "FP32 → FP16" and shipped an all-FLOAT32 model
labelled fp16 in its manifest and config.pbtxt, though nothing ever ran in FP16.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.targets import get_target
from quantserve import cli
from quantserve.errors import QuantserveError

ORT_REFUSAL = (
    "precision fp16 on target 'onnxruntime' needs ONNX Runtime's TensorRT accelerator on a GPU "
    "(QUANTSERVE_ORT_TENSORRT=1), without which it runs the model in FP32; or --target tensorrt"
)


@pytest.fixture
def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANTSERVE_ORT_TENSORRT", raising=False)
    monkeypatch.delenv("QUANTSERVE_ORT_DEVICE", raising=False)


@pytest.mark.usefixtures("no_accelerator")
def test_fp16_on_onnxruntime_without_the_accelerator_is_refused(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path
) -> None:
    with pytest.raises(QuantserveError) as caught:
        optimize(OptimizeOptions(tiny_onnx, None, "fp16", "onnxruntime", tmp_path / "out", eval_path=calib_npz))
    assert str(caught.value) == ORT_REFUSAL
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("no_accelerator")
def test_the_cli_refuses_in_one_line_and_writes_nothing(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["optimize", str(tiny_onnx), "--eval", str(calib_npz), "--precision", "fp16", "--target", "onnxruntime"]
    code = cli.main([*argv, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"quantserve: error: {ORT_REFUSAL}\n"
    assert not (tmp_path / "b").exists()


def test_onnxruntime_supports_fp16_only_with_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANTSERVE_ORT_DEVICE", raising=False)
    monkeypatch.delenv("QUANTSERVE_ORT_TENSORRT", raising=False)
    assert get_target("onnxruntime").supports_fp16 is False
    monkeypatch.setenv("QUANTSERVE_ORT_TENSORRT", "1")
    assert get_target("onnxruntime").supports_fp16 is True


@pytest.mark.usefixtures("no_accelerator")
def test_fp16_on_the_cpu_target_names_both_gpu_routes(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError) as caught:
        optimize(OptimizeOptions(tiny_onnx, calib_npz, "fp16", "embedded", tmp_path / "out"))
    assert str(caught.value) == (
        "precision fp16 needs a GPU target, not 'embedded': onnxruntime with ONNX Runtime's TensorRT accelerator "
        "on a GPU (QUANTSERVE_ORT_TENSORRT=1), or tensorrt"
    )


def test_help_says_what_makes_fp16_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["optimize", "--help"])
    words = " ".join(capsys.readouterr().out.split())
    assert (
        "fp16 on a GPU target alone: onnxruntime with ONNX Runtime's TensorRT accelerator on a GPU "
        "(QUANTSERVE_ORT_TENSORRT=1), or tensorrt"
    ) in words
