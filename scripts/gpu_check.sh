#!/usr/bin/env bash
# GPU check for whoever next has an NVIDIA GPU: runs the TensorRT tests (pytest -m gpu) and a short
# INT8 vs FP16 vs FP32 engine benchmark of the demo model, writing the figures as JSON.
#
#   scripts/gpu_check.sh [OUT_DIR]        (default: reports/gpu_check)
#
# Needs an NVIDIA GPU (nvidia-smi) and either TensorRT's Python API importable by $PYTHON
# (default .venv/bin/python, else python3) or a Docker engine with the NVIDIA Container Toolkit,
# in which case it builds the optimizer image and reruns itself inside it. Without a GPU it stops
# with one line and exit status 2, having run and written nothing.
# Writes: OUT_DIR/gpu_tests.log, OUT_DIR/gpu_tests.xml, OUT_DIR/gpu_benchmark.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR=${1:-reports/gpu_check}
PYTHON=${PYTHON:-.venv/bin/python}
[[ -x "$PYTHON" ]] || PYTHON=python3
IMAGE=${QUANTSERVE_OPTIMIZER_IMAGE:-quantserve:optimizer}
BENCH_SECONDS=${GPU_CHECK_SECONDS:-10}

die() {
    echo "gpu_check: $*" >&2
    exit 2
}

gpu_present() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

tensorrt_present() {
    "$PYTHON" -c 'import tensorrt; tensorrt.Builder' >/dev/null 2>&1
}

docker_usable() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

rerun_in_docker() {
    echo "gpu_check: TensorRT not importable here; running inside $IMAGE" >&2
    docker build --target optimizer -t "$IMAGE" .
    exec docker run --rm --gpus all --user "$(id -u):$(id -g)" \
        -e GPU_CHECK_IN_DOCKER=1 -e PYTHON=python -e HOME=/tmp -e GPU_CHECK_SECONDS="$BENCH_SECONDS" \
        -v "$PWD:/work" -w /work --entrypoint bash "$IMAGE" scripts/gpu_check.sh "$OUT_DIR"
}

gpu_present || die "no NVIDIA GPU found (nvidia-smi missing or lists no GPU); nothing was run"
if ! tensorrt_present; then
    if [[ "${GPU_CHECK_IN_DOCKER:-0}" != 1 ]] && docker_usable; then
        rerun_in_docker
    fi
    die "TensorRT's Python API does not import with $PYTHON and no usable Docker engine was found"
fi

mkdir -p "$OUT_DIR"
echo "gpu_check: 1/2 TensorRT tests (pytest -m gpu)" >&2
tests_status=0
"$PYTHON" -m pytest -q -m gpu tests/optimizer/test_tensorrt.py --junitxml "$OUT_DIR/gpu_tests.xml" \
    2>&1 | tee "$OUT_DIR/gpu_tests.log" || tests_status=$?

echo "gpu_check: 2/2 INT8 vs FP16 vs FP32 benchmark" >&2
"$PYTHON" - "$OUT_DIR" "$BENCH_SECONDS" "$tests_status" <<'PYEOF'
"""Build the demo model for TensorRT at three precisions and time each engine (trtexec or the Python API)."""
import ctypes
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from examples.digits import export_program, load_splits, train
from optimizer.pipeline import optimize
from optimizer.tensorrt import TARGET, TensorRTTarget
from quantserve.artifact import Artifact, Manifest

out, seconds, tests_status = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
BATCHES = (1, 32)


def build_engines(work: Path) -> dict:
    """fp32 and int8 through `quantserve optimize`; fp16 from the same fused FP32 ONNX."""
    splits = load_splits(0)
    calib = splits.calib.save(work / "calib.npz")
    program = export_program(train(splits, 0), work / "digits.pt2")
    built = {p: optimize(program, calib, p, "tensorrt", work / p) for p in ("fp32", "int8")}
    fp32 = built["fp32"].manifest
    fp16_manifest = Manifest.from_dict({**fp32.to_dict(), "precision": "fp16", "extra": {}})
    built["fp16"] = TensorRTTarget().build(Artifact(work / "fp32" / "fp32.onnx", fp16_manifest), work / "fp16")
    return built


def trtexec_binary():
    return shutil.which("trtexec") or next(
        (str(p) for p in (Path("/usr/src/tensorrt/bin/trtexec"), Path("/opt/tensorrt/bin/trtexec")) if p.is_file()),
        None,
    )


def time_with_trtexec(binary: str, plan: Path, shapes: dict) -> dict:
    shape_arg = ",".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes.items())
    command = [binary, f"--loadEngine={plan}", f"--shapes={shape_arg}", f"--duration={seconds:g}", "--warmUp=500"]
    log = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Throughput: ([\d.]+) qps", log).group(1))
    latency = re.search(r"Latency: min = [\d.]+ ms, max = [\d.]+ ms, mean = [\d.]+ ms, median = ([\d.]+) ms, "
                        r"percentile\(90%\) = [\d.]+ ms, percentile\(95%\) = [\d.]+ ms, percentile\(99%\) = ([\d.]+) ms", log)
    return {"batches_per_s": qps, "latency_median_ms": float(latency.group(1)), "latency_p99_ms": float(latency.group(2))}


def cudart():
    for name in ("libcudart.so", "libcudart.so.12", "libcudart.so.13"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise SystemExit("gpu_check: neither trtexec nor libcudart found; cannot time engines")


def time_with_python(plan: Path, shapes: dict) -> dict:
    """execute_async_v3 on device buffers from the CUDA runtime (ctypes), one stream, synchronous timing."""
    import tensorrt as trt

    cuda = cudart()
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan.read_bytes())
    context = engine.create_execution_context()
    stream = ctypes.c_void_p()
    assert cuda.cudaStreamCreate(ctypes.byref(stream)) == 0
    for name, shape in shapes.items():
        context.set_input_shape(name, shape)
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        size = int(np.prod(context.get_tensor_shape(name))) * np.dtype(trt.nptype(engine.get_tensor_dtype(name))).itemsize
        pointer = ctypes.c_void_p()
        assert cuda.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)) == 0
        assert cuda.cudaMemset(pointer, 0, ctypes.c_size_t(size)) == 0
        context.set_tensor_address(name, pointer.value)
    latencies, deadline = [], time.perf_counter() + seconds
    for _ in range(50):
        context.execute_async_v3(stream.value)
    cuda.cudaStreamSynchronize(stream)
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        context.execute_async_v3(stream.value)
        cuda.cudaStreamSynchronize(stream)
        latencies.append(time.perf_counter() - start)
    ms = np.array(latencies) * 1e3
    return {"batches_per_s": len(ms) / (ms.sum() / 1e3), "latency_median_ms": float(np.median(ms)),
            "latency_p99_ms": float(np.percentile(ms, 99))}


def benchmark(built: dict) -> dict:
    binary = trtexec_binary()
    results = {}
    for precision, artifact in built.items():
        inputs = artifact.manifest.inputs
        results[precision] = {}
        for batch in BATCHES:
            shapes = {t.name: [batch, *t.shape[1:]] for t in inputs}
            timing = time_with_trtexec(binary, artifact.path, shapes) if binary else time_with_python(artifact.path, shapes)
            timing["samples_per_s"] = timing["batches_per_s"] * batch
            results[precision][str(batch)] = timing
    return {"method": "trtexec" if binary else "tensorrt-python", "results": results}


work = out / "engines"
built = build_engines(work)
figures = benchmark(built)
top = str(BATCHES[-1])
rate = {p: figures["results"][p][top]["samples_per_s"] for p in built}
runtime = TARGET.preflight()
summary = {
    "model": "examples.digits (demo ResNet-style CNN)",
    "tensorrt_version": runtime.tensorrt_version,
    "gpu_name": runtime.gpu_name,
    "compute_capability": runtime.compute_capability,
    "gpu_tests_exit_status": tests_status,
    "duration_s_per_point": seconds,
    **figures,
    "int8_speedup_vs_fp32": rate["int8"] / rate["fp32"],
    "int8_speedup_vs_fp16": rate["int8"] / rate["fp16"],
    "fp16_speedup_vs_fp32": rate["fp16"] / rate["fp32"],
    "accuracy": {p: a.manifest.verification for p, a in built.items() if a.manifest.verification},
}
(out / "gpu_benchmark.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
print(json.dumps({k: summary[k] for k in ("gpu_name", "int8_speedup_vs_fp32", "int8_speedup_vs_fp16")}, indent=2))
PYEOF
echo "gpu_check: wrote $OUT_DIR/gpu_benchmark.json (tests exit status $tests_status)" >&2
exit "$tests_status"
