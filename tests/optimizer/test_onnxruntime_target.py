"""ONNX Runtime target: build copies the ONNX; deploy writes an `onnxruntime_onnx` config Triton parses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_test_models import matmul_onnx, onnx_artifact
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from optimizer.onnxruntime_target import OnnxRuntimeSettings, OnnxRuntimeTarget, config_extra, tensorrt_accelerator
from quantserve.artifact import Artifact, Manifest
from quantserve.errors import QuantserveError

TRT_GPU = OnnxRuntimeSettings(device="gpu", tensorrt_accelerator=True, engine_cache_path="/cache")


def parse_back(config: dict) -> model_config_pb2.ModelConfig:
    """Dict → Triton's ModelConfig → protobuf text → parsed again, as Triton reads config.pbtxt."""
    text = text_format.MessageToString(json_format.ParseDict(config, model_config_pb2.ModelConfig()))
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_build_copies_the_onnx_and_names_it_the_model(tmp_path: Path) -> None:
    source = matmul_onnx(tmp_path / "int8.onnx", qdq=True)
    built = OnnxRuntimeTarget(settings=TRT_GPU).build(onnx_artifact(source, "int8"), tmp_path / "out")
    assert built.path == tmp_path / "out" / "model.onnx"
    assert built.path.read_bytes() == source.read_bytes()
    saved = Manifest.load(tmp_path / "out")
    assert (saved.target, saved.files["model"], saved.precision) == ("onnxruntime", "model.onnx", "int8")
    assert saved.extra["onnxruntime"] == {"device": "gpu", "tensorrt_accelerator": True}
    assert not list((tmp_path / "out").glob(".*partial"))


def test_build_refuses_a_missing_onnx(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="ONNX model not found"):
        OnnxRuntimeTarget().build(onnx_artifact(tmp_path / "absent.onnx", "fp32"), tmp_path / "out")


def test_cpu_layout_has_no_accelerator(tmp_path: Path) -> None:
    artifact = onnx_artifact(tmp_path / "model.onnx", "fp32")
    layout = OnnxRuntimeTarget(settings=OnnxRuntimeSettings()).triton_layout(artifact)
    assert layout.runtime == {"platform": "onnxruntime_onnx"}
    assert layout.instance_kind == "KIND_CPU" and layout.config_extra == {}
    assert layout.version_files == {"model.onnx": tmp_path / "model.onnx"}


@pytest.mark.parametrize(("precision", "mode"), [("int8", "INT8"), ("fp16", "FP16"), ("fp32", "FP32")])
def test_tensorrt_accelerator_parses_as_triton_config(precision: str, mode: str) -> None:
    config = {"name": "m", "platform": "onnxruntime_onnx", **config_extra(precision, TRT_GPU)}
    parsed = parse_back(config)
    (accelerator,) = parsed.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert dict(accelerator.parameters) == {
        "precision_mode": mode,
        "max_workspace_size_bytes": str(1 << 30),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": "/cache",
    }


def test_accelerator_refuses_unknown_precision() -> None:
    with pytest.raises(QuantserveError, match="unknown precision 'int4'"):
        tensorrt_accelerator("int4", TRT_GPU)


def test_settings_validate_and_come_from_the_environment() -> None:
    with pytest.raises(QuantserveError, match="TensorRT accelerator needs device 'gpu'"):
        OnnxRuntimeSettings(device="cpu", tensorrt_accelerator=True)
    with pytest.raises(QuantserveError, match="device must be one of"):
        OnnxRuntimeSettings(device="tpu")
    assert OnnxRuntimeSettings.from_env({"QUANTSERVE_ORT_TENSORRT": "1"}).device == "gpu"
    assert OnnxRuntimeSettings.from_env({}) == OnnxRuntimeSettings()


def deployed_config(tmp_path: Path, built: Artifact) -> dict:
    from serving.deploy import deploy
    from serving.model_config import parse_config

    deployment = deploy(built.path.parent, tmp_path / "repo", "tiny", max_batch=8)
    assert (deployment.version_dir / built.path.name).is_file()
    return parse_config(deployment.config_path)


def test_deploy_writes_an_onnxruntime_config_with_the_tensorrt_accelerator(tmp_path: Path) -> None:
    source = matmul_onnx(tmp_path / "int8.onnx", qdq=True)
    built = OnnxRuntimeTarget(settings=TRT_GPU).build(onnx_artifact(source, "int8"), tmp_path / "build")
    config = deployed_config(tmp_path, built)
    assert config["platform"] == "onnxruntime_onnx" and config["max_batch_size"] == 8
    assert config["instance_group"][0]["kind"] == "KIND_GPU"
    accelerator = config["optimization"]["execution_accelerators"]["gpu_execution_accelerator"][0]
    assert accelerator["parameters"]["precision_mode"] == "INT8"


def test_deployed_cpu_model_runs_like_its_source_in_onnx_runtime(tmp_path: Path) -> None:
    import onnxruntime as ort

    source = matmul_onnx(tmp_path / "fp32.onnx")
    built = OnnxRuntimeTarget(settings=OnnxRuntimeSettings()).build(onnx_artifact(source, "fp32"), tmp_path / "b")
    config = deployed_config(tmp_path, built)
    assert config["instance_group"][0]["kind"] == "KIND_CPU" and "optimization" not in config
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    deployed = next((tmp_path / "repo" / "tiny").glob("[0-9]*/model.onnx"))
    run = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        for p in (source, deployed)
    ]
    np.testing.assert_array_equal(run[0], run[1])
