"""TensorRT target: the GPU-free parts on the CPU; the real engine builds where TensorRT and a GPU exist."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from engine_test_models import matmul_onnx, onnx_artifact
from onnx import TensorProto

from optimizer import tensorrt as trt_target
from optimizer.tensorrt import (
    DeviceRuntime,
    ShapeProfile,
    TensorRTSettings,
    build_plan,
    check_engine_compatible,
    check_max_batch,
    child_failure,
    optimization_profiles,
)
from quantserve.artifact import TensorSpec
from quantserve.errors import QuantserveError

NO_TENSORRT = trt_target.tensorrt_missing_reason()
NO_GPU = shutil.which("nvidia-smi") is None
gpu = pytest.mark.skipif(
    bool(NO_TENSORRT) or NO_GPU,
    reason=f"TensorRT/GPU absent here: {NO_TENSORRT or 'no nvidia-smi (no NVIDIA GPU)'}",
)


def engine_record(**changes: object) -> dict:
    record = {
        "tensorrt_version": "10.5.0.18",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "precision": "int8",
        "max_batch": 32,
    }
    record.update(changes)
    return record


# --- optimization profiles -------------------------------------------------------------------


def test_profiles_span_batch_one_to_max_and_keep_fixed_axes() -> None:
    specs = [TensorSpec("pixels", "float32", ("batch", 1, 8, 8))]
    assert optimization_profiles(specs, max_batch=32) == [
        ShapeProfile("pixels", (1, 1, 8, 8), (32, 1, 8, 8), (32, 1, 8, 8))
    ]
    assert optimization_profiles(specs, max_batch=16, opt_batch=4)[0].opt == (4, 1, 8, 8)


def test_profiles_cover_a_dynamic_sequence_axis() -> None:
    specs = [
        TensorSpec("input_ids", "int64", ("batch", "sequence")),
        TensorSpec("mask", "int64", ("batch", "sequence")),
    ]
    profiles = optimization_profiles(specs, max_batch=8, max_sequence=128)
    assert [p.name for p in profiles] == ["input_ids", "mask"]
    assert profiles[0] == ShapeProfile("input_ids", (1, 1), (8, 128), (8, 128))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch": 0}, "max batch must be at least 1"),
        ({"max_batch": 8, "opt_batch": 9}, "opt batch 9 must lie in 1..8"),
        ({"max_batch": 8}, "QUANTSERVE_TRT_MAX_SEQUENCE"),
    ],
)
def test_profiles_refuse_impossible_settings(kwargs: dict, message: str) -> None:
    specs = [TensorSpec("input_ids", "int64", ("batch", "sequence"))]
    with pytest.raises(QuantserveError, match=message):
        optimization_profiles(specs, **kwargs)


def test_settings_come_from_the_environment() -> None:
    env = {"QUANTSERVE_TRT_MAX_BATCH": "64", "QUANTSERVE_TRT_WORKSPACE_MIB": "512", "QUANTSERVE_TRT_TIMING_CACHE": "/c"}
    settings = TensorRTSettings.from_env(env)
    assert (settings.max_batch, settings.workspace_mib, settings.timing_cache) == (64, 512, Path("/c"))
    with pytest.raises(QuantserveError, match="QUANTSERVE_TRT_MAX_BATCH='many'"):
        TensorRTSettings.from_env({"QUANTSERVE_TRT_MAX_BATCH": "many"})


# --- precision per TensorRT version ------------------------------------------------------------


def test_int8_is_explicit_qdq_in_a_strongly_typed_network_on_10_and_11() -> None:
    for major in (10, 11):
        assert build_plan("int8", major) == {"strongly_typed": True, "fp16_flag": False, "autocast_fp16_onnx": False}


def test_fp16_uses_the_builder_flag_on_10_and_an_fp16_onnx_on_11() -> None:
    assert build_plan("fp16", 10) == {"strongly_typed": False, "fp16_flag": True, "autocast_fp16_onnx": False}
    assert build_plan("fp16", 11) == {"strongly_typed": True, "fp16_flag": False, "autocast_fp16_onnx": True}


def test_build_plan_refuses_old_tensorrt_and_unknown_precision() -> None:
    with pytest.raises(QuantserveError, match=r"TensorRT 8\.x is too old"):
        build_plan("int8", 8)
    with pytest.raises(QuantserveError, match="unknown precision 'int4'"):
        build_plan("int4", 10)


def test_autocast_fp16_keeps_fp32_io_and_matches_fp32_outputs(tmp_path: Path) -> None:
    import onnxruntime as ort

    source = matmul_onnx(tmp_path / "fp32.onnx")
    fp16 = trt_target.autocast_fp16(source, tmp_path / "fp16.onnx")
    model = onnx.load(str(fp16))
    assert {i.name: i.data_type for i in model.graph.initializer}["W"] == TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    ref = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    half = ort.InferenceSession(str(fp16), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, ref, atol=2e-2, rtol=2e-2)


def test_qdq_detection(tmp_path: Path) -> None:
    assert trt_target.has_qdq_nodes(matmul_onnx(tmp_path / "q.onnx", qdq=True))
    assert not trt_target.has_qdq_nodes(matmul_onnx(tmp_path / "f.onnx"))


# --- engine record: refuse the wrong GPU / TensorRT ---------------------------------------------


def test_engine_matches_its_own_machine_even_with_another_build_number() -> None:
    runtime = DeviceRuntime("10.5.0.99", "NVIDIA H100 80GB HBM3", "9.0")
    assert check_engine_compatible(engine_record(), runtime) == []


def test_engine_on_another_gpu_of_the_same_architecture_gets_a_warning() -> None:
    warnings = check_engine_compatible(engine_record(), DeviceRuntime("10.5.0.18", "NVIDIA H200", "9.0"))
    assert len(warnings) == 1 and "NVIDIA H200" in warnings[0]


def test_engine_refused_on_another_tensorrt_version() -> None:
    with pytest.raises(
        QuantserveError, match=r"built with TensorRT 10\.5\.0\.18 but this machine has TensorRT 10\.7\.0"
    ):
        check_engine_compatible(engine_record(), DeviceRuntime("10.7.0.23", "NVIDIA H100 80GB HBM3", "9.0"))


def test_engine_refused_on_another_compute_capability() -> None:
    with pytest.raises(
        QuantserveError, match=r"compute capability 9\.0\) but this GPU is NVIDIA L4 \(compute capability 8\.9"
    ):
        check_engine_compatible(engine_record(), DeviceRuntime("10.5.0.18", "NVIDIA L4", "8.9"))


def test_deploy_batch_beyond_the_profile_is_refused() -> None:
    check_max_batch(engine_record(max_batch=32), 32)
    with pytest.raises(QuantserveError, match="exceeds the engine's profile maximum 32"):
        check_max_batch(engine_record(max_batch=32), 64)


def test_deploy_checks_the_profile_through_the_target_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.deploy import deploy

    monkeypatch.setenv(trt_target.SKIP_CHECK_ENV, "1")
    build = tmp_path / "build"
    build.mkdir()
    (build / "model.plan").write_bytes(b"engine bytes")
    artifact = onnx_artifact(build / "model.plan", "int8")
    artifact.manifest.target = "tensorrt"
    artifact.manifest.files = {"model": "model.plan"}
    artifact.manifest.extra["tensorrt"] = engine_record(max_batch=16)
    artifact.manifest.save(build)
    with pytest.raises(QuantserveError, match="exceeds the engine's profile maximum 16"):
        deploy(build, tmp_path / "repo", "engine", max_batch=32)
    assert not (tmp_path / "repo" / "engine").exists()


def test_triton_layout_is_a_gpu_tensorrt_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trt_target.SKIP_CHECK_ENV, "1")
    artifact = onnx_artifact(tmp_path / "model.plan", "int8")
    artifact.manifest.extra["tensorrt"] = engine_record()
    layout = trt_target.TARGET.triton_layout(artifact)
    assert layout.runtime == {"platform": "tensorrt_plan"}
    assert layout.version_files == {"model.plan": tmp_path / "model.plan"}
    assert layout.instance_kind == "KIND_GPU"


def test_triton_layout_refuses_an_artifact_without_engine_record(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="no TensorRT engine record"):
        trt_target.TARGET.triton_layout(onnx_artifact(tmp_path / "model.plan", "int8"))


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT is installed here: the unchecked-deploy refusal needs it absent")
def test_deploy_without_tensorrt_refuses_unless_told_to_skip_the_check(tmp_path: Path) -> None:
    artifact = onnx_artifact(tmp_path / "model.plan", "int8")
    artifact.manifest.extra["tensorrt"] = engine_record()
    with pytest.raises(QuantserveError, match=f"cannot check the engine.*{trt_target.SKIP_CHECK_ENV}=1"):
        trt_target.TensorRTTarget().triton_layout(artifact)


# --- the child process and its errors ----------------------------------------------------------


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT is installed here")
def test_preflight_without_tensorrt_is_one_clear_line(tmp_path: Path) -> None:
    target = trt_target.TensorRTTarget()
    with pytest.raises(QuantserveError) as caught:
        target.build(onnx_artifact(matmul_onnx(tmp_path / "m.onnx", qdq=True), "int8"), tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message
    assert "'tensorrt' Python module is not installed" in message and trt_target.OPTIMIZER_IMAGE in message
    assert not (tmp_path / "out").exists()


def test_child_reports_a_placeholder_tensorrt_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `tensorrt` package without TensorRT's libraries (what PyPI's placeholder gives) fails clearly."""
    placeholder = tmp_path / "site" / "tensorrt"
    placeholder.mkdir(parents=True)
    (placeholder / "__init__.py").write_text("__version__ = '0.0.1'\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'site'}:{Path.cwd()}")
    with pytest.raises(QuantserveError, match=r"TensorRT probe failed: .*placeholder without TensorRT's libraries"):
        trt_target.run_child(["probe"], timeout_s=60)


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT is installed here")
def test_child_probe_without_tensorrt_names_the_import_failure() -> None:
    with pytest.raises(QuantserveError, match="TensorRT probe failed: the 'tensorrt' module does not import"):
        trt_target.run_child(["probe"], timeout_s=60)


def test_a_child_killed_by_a_signal_is_reported_as_a_crash() -> None:
    crash = "import os, signal, sys; print('building layer 7', file=sys.stderr); os.kill(os.getpid(), signal.SIGSEGV)"
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, check=False)
    message = child_failure("build", done.returncode, done.stderr)
    assert message == (
        "TensorRT build process died with SIGSEGV (a crash or GPU out of memory); last output: building layer 7"
    )


def test_child_failure_prefers_the_childs_own_error_line() -> None:
    stderr = "[TRT] [W] something\ntensorrt_build: error: builder returned no engine\n"
    assert child_failure("build", 1, stderr) == "TensorRT build failed: builder returned no engine"
    assert (
        child_failure("build", 3, "Traceback...\nTypeError: bad\n") == "TensorRT build failed (exit 3): TypeError: bad"
    )


# --- real builds: only where TensorRT and a GPU exist -------------------------------------------


@gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_real_engine_build_writes_plan_record_and_timing_cache(tmp_path: Path, precision: str) -> None:
    source = matmul_onnx(tmp_path / "m.onnx", qdq=precision == "int8")
    cache = tmp_path / "timing.cache"
    target = trt_target.TensorRTTarget(settings=TensorRTSettings(max_batch=16, timing_cache=cache, workspace_mib=256))
    built = target.build(onnx_artifact(source, precision), tmp_path / "out")
    assert built.path == tmp_path / "out" / "model.plan" and built.path.stat().st_size > 0
    record = built.manifest.extra["tensorrt"]
    runtime = target.preflight()
    assert record["tensorrt_version"] == runtime.tensorrt_version and record["precision"] == precision
    assert record["profiles"][0]["max"] == [16, 4]
    assert check_engine_compatible(record, runtime) == []
    assert cache.stat().st_size > 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["target"] == "tensorrt"


@gpu
def test_real_build_reuses_the_timing_cache(tmp_path: Path) -> None:
    source = matmul_onnx(tmp_path / "m.onnx", qdq=True)
    cache = tmp_path / "timing.cache"
    settings = TensorRTSettings(max_batch=8, timing_cache=cache, workspace_mib=256)
    trt_target.TensorRTTarget(settings=settings).build(onnx_artifact(source, "int8"), tmp_path / "a")
    first = cache.read_bytes()
    trt_target.TensorRTTarget(settings=settings).build(onnx_artifact(source, "int8"), tmp_path / "b")
    assert len(cache.read_bytes()) >= len(first)


def test_tensorrt_config_from_deploy_parses_with_triton(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy's config for a TensorRT artifact: tensorrt_plan, GPU instances, batching, parsed by model_config_pb2."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from serving.deploy_config import build_config
    from serving.model_config import merge_extra, to_protobuf_text

    monkeypatch.setenv(trt_target.SKIP_CHECK_ENV, "1")
    artifact = onnx_artifact(tmp_path / "model.plan", "int8")
    artifact.manifest.extra["tensorrt"] = engine_record()
    layout = trt_target.TARGET.triton_layout(artifact)
    config = build_config(artifact.manifest, layout, "tiny", 16, 500, None, 2)
    parsed = text_format.Parse(
        to_protobuf_text(merge_extra(config.to_dict(), layout.config_extra)), model_config_pb2.ModelConfig()
    )
    assert parsed.platform == "tensorrt_plan" and parsed.max_batch_size == 16
    assert parsed.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert parsed.instance_group[0].count == 2
    assert list(parsed.input[0].dims) == [4] and parsed.input[0].data_type == model_config_pb2.TYPE_FP32
    assert list(parsed.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]


def test_gpu_identity_follows_cuda_visible_devices() -> None:
    """NVML numbers GPUs ignoring CUDA_VISIBLE_DEVICES; the record must describe CUDA device 0."""
    from optimizer.tensorrt_build import first_visible_gpu

    class Lookups:
        def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
            return f"index {index}"

        def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
            return f"uuid {uuid}"

    assert first_visible_gpu(Lookups(), "") == "index 0"
    assert first_visible_gpu(Lookups(), "3,1") == "index 3"
    assert first_visible_gpu(Lookups(), "GPU-8d2c,GPU-11aa") == "uuid GPU-8d2c"
