"""The TensorRT build itself, run only as a child process: `python -m optimizer.tensorrt_build`.

`probe` prints this machine's TensorRT version and GPU as JSON; `build SPEC.json` parses the
ONNX into a (strongly typed) network, adds one optimization profile, reuses the timing cache on
disk, builds the serialized engine and writes it plus a small JSON result. `optimizer.tensorrt`
writes the spec and reports failures; this is the only module that imports `tensorrt`.
Written to the TensorRT 10.x/11.x Python API; run only where TensorRT and a GPU exist.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from optimizer.tensorrt import ERROR_PREFIX, MIN_TENSORRT_MAJOR, tensorrt_major


class BuildError(Exception):
    """A failure reported to the parent as one `tensorrt_build: error:` line."""


def import_tensorrt() -> Any:
    """The real TensorRT module, or a BuildError saying why not (missing, PyPI placeholder, too old)."""
    try:
        import tensorrt as trt
    except Exception as exc:  # a broken install raises ImportError, OSError or the stub's own error
        raise BuildError(f"the 'tensorrt' module does not import ({type(exc).__name__}: {exc})") from exc
    if not hasattr(trt, "Builder"):
        raise BuildError("the installed 'tensorrt' package is a placeholder without TensorRT's libraries")
    if tensorrt_major(trt.__version__) < MIN_TENSORRT_MAJOR:
        raise BuildError(f"TensorRT {trt.__version__} is too old; TensorRT {MIN_TENSORRT_MAJOR}+ is needed")
    return trt


def gpu_identity() -> dict[str, str]:
    """Name and compute capability of the GPU TensorRT builds on (CUDA device 0), from NVML (`nvidia-ml-py`)."""
    try:
        import pynvml
    except ImportError as exc:
        raise BuildError("the 'pynvml' module (PyPI nvidia-ml-py) is not installed") from exc
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            raise BuildError("no NVIDIA GPU is visible (NVML lists no device)")
        handle = first_visible_gpu(pynvml, os.environ.get("CUDA_VISIBLE_DEVICES", ""))
        name = pynvml.nvmlDeviceGetName(handle)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    except pynvml.NVMLError as exc:
        raise BuildError(f"no usable NVIDIA GPU/driver ({exc})") from exc
    name = name.decode() if isinstance(name, bytes) else str(name)
    return {"gpu_name": name, "compute_capability": f"{major}.{minor}"}


def first_visible_gpu(pynvml: Any, visible: str) -> Any:
    """NVML's handle for CUDA device 0: NVML ignores CUDA_VISIBLE_DEVICES, so honour its first entry."""
    first = visible.split(",")[0].strip()
    if first.startswith(("GPU-", "MIG-")):
        return pynvml.nvmlDeviceGetHandleByUUID(first)
    return pynvml.nvmlDeviceGetHandleByIndex(int(first) if first.isdigit() else 0)


def probe() -> dict[str, str]:
    """This machine's TensorRT version and GPU."""
    trt = import_tensorrt()
    return {"tensorrt_version": trt.__version__, **gpu_identity()}


def parse_network(trt: Any, builder: Any, logger: Any, onnx_path: str, strongly_typed: bool) -> tuple[Any, Any]:
    """Parse the ONNX into a network; strongly typed on 10.x by flag, always on 11.x."""
    flags = 0
    if strongly_typed and tensorrt_major(trt.__version__) == MIN_TENSORRT_MAJOR:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors or 'no detail'}")
    return network, parser


def add_profile(builder: Any, config: Any, network: Any, profiles: list[dict[str, Any]]) -> None:
    """One optimization profile with the min/opt/max shapes computed by the parent."""
    names = {network.get_input(i).name for i in range(network.num_inputs)}
    profile = builder.create_optimization_profile()
    for shape in profiles:
        if shape["name"] not in names:
            raise BuildError(f"profile names input '{shape['name']}' but the network's inputs are {sorted(names)}")
        profile.set_shape(shape["name"], shape["min"], shape["opt"], shape["max"])
    config.add_optimization_profile(profile)


def configure(trt: Any, config: Any, spec: dict[str, Any]) -> Any:
    """Workspace limit, optimization level, FP16 flag (10.x weakly typed only) and timing cache."""
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec["workspace_bytes"]))
    config.builder_optimization_level = int(spec["optimization_level"])
    if spec["fp16_flag"]:
        config.set_flag(trt.BuilderFlag.FP16)
    cache_path = Path(spec["timing_cache"])
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def save_timing_cache(config: Any, path: Path) -> None:
    """Write the builder's updated timing cache so the next build reuses its measurements."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(bytes(config.get_timing_cache().serialize()))
    os.replace(partial, path)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the engine described by `spec` into `spec['engine']`; return the engine record."""
    trt = import_tensorrt()
    identity = gpu_identity()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = parse_network(trt, builder, logger, spec["onnx"], spec["strongly_typed"])
    config = builder.create_builder_config()
    add_profile(builder, config, network, spec["profiles"])
    configure(trt, config, spec)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError("builder returned no engine (see TensorRT's log above; often too little workspace)")
    Path(spec["engine"]).write_bytes(bytes(serialized))
    save_timing_cache(config, Path(spec["timing_cache"]))
    return {
        "tensorrt_version": trt.__version__,
        **identity,
        "strongly_typed": bool(spec["strongly_typed"]),
        "fp16_flag": bool(spec["fp16_flag"]),
        "autocast_fp16_onnx": bool(spec.get("autocast_fp16_onnx", False)),
        "optimization_level": int(spec["optimization_level"]),
        "workspace_bytes": int(spec["workspace_bytes"]),
        "timing_cache": spec["timing_cache"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m optimizer.tensorrt_build")
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("probe", help="print TensorRT version and GPU as JSON")
    build_parser = sub.add_parser("build", help="build the engine a spec file describes")
    build_parser.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.step == "probe":
            print(json.dumps(probe()))
            return 0
        spec = json.loads(args.spec.read_text())
        Path(spec["result"]).write_text(json.dumps(build(spec), indent=2))
        return 0
    except BuildError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
