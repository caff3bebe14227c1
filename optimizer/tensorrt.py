"""TensorRT target: a `tensorrt_plan` engine built from the Q/DQ (or FP32) ONNX, for the NGC image.

The TensorRT calls live only in `optimizer.tensorrt_build`, run as a child process
(`python -m optimizer.tensorrt_build`), so a crash or a GPU out-of-memory cannot take the tool
down. This module holds the parts that need no GPU and are tested on the CPU: optimization
profiles from shapes, the engine record and its compatibility check, FP16 autocast of the ONNX
for TensorRT 11, and running/reporting the child.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimizer import onnx_files
from optimizer.targets import PRECISIONS, TritonLayout
from quantserve.artifact import Artifact, TensorSpec
from quantserve.errors import QuantserveError

ENGINE_FILE = "model.plan"
# TensorRT's Python API is in the Dockerfile's `optimizer` stage alone, not in the NGC base image it starts from
OPTIMIZER_IMAGE = "quantserve:optimizer"
OPTIMIZER_IMAGE_BUILD = f"docker build --target optimizer -t {OPTIMIZER_IMAGE} ."
MIN_TENSORRT_MAJOR = 10
ERROR_PREFIX = "tensorrt_build: error: "
# Deploying onto an unverified GPU is allowed only when the operator says so explicitly.
SKIP_CHECK_ENV = "QUANTSERVE_TRT_SKIP_DEVICE_CHECK"


@dataclass(frozen=True)
class ShapeProfile:
    """min/opt/max shapes of one input in a TensorRT optimization profile."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@dataclass(frozen=True)
class DeviceRuntime:
    """Where an engine is built or deployed: TensorRT version and the GPU."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


@dataclass(frozen=True)
class TensorRTSettings:
    """Build settings; every one also settable from the environment (`QUANTSERVE_TRT_*`)."""

    max_batch: int = 32
    opt_batch: int | None = None
    max_sequence: int | None = None
    workspace_mib: int = 4096
    optimization_level: int = 3
    timing_cache: Path = Path.home() / ".cache" / "quantserve" / "tensorrt.timing-cache"
    timeout_s: float = 3600.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TensorRTSettings:
        """Defaults overridden by `QUANTSERVE_TRT_MAX_BATCH`, `..._WORKSPACE_MIB` and so on."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for name, kind in (("max_batch", int), ("opt_batch", int), ("max_sequence", int), ("workspace_mib", int)):
            changes.update(_env_value(env, name, kind))
        changes.update(_env_value(env, "optimization_level", int))
        changes.update(_env_value(env, "timing_cache", Path))
        changes.update(_env_value(env, "timeout_s", float))
        return replace(cls(), **changes)


def _env_value(env: Any, name: str, kind: type) -> dict[str, Any]:
    key = f"QUANTSERVE_TRT_{name.upper()}"
    if key not in env:
        return {}
    try:
        return {name: kind(env[key])}
    except ValueError as exc:
        raise QuantserveError(f"{key}={env[key]!r} is not a valid {kind.__name__}") from exc


def optimization_profiles(
    inputs: list[TensorSpec], max_batch: int, max_sequence: int | None = None, opt_batch: int | None = None
) -> list[ShapeProfile]:
    """One profile's shapes per input: batch axis 1..max_batch (opt = opt_batch or max_batch), other
    dynamic axes 1..max_sequence (opt = max_sequence); fixed axes stay as they are."""
    if max_batch < 1:
        raise QuantserveError(f"max batch must be at least 1, got {max_batch}")
    opt = max_batch if opt_batch is None else opt_batch
    if not 1 <= opt <= max_batch:
        raise QuantserveError(f"opt batch {opt} must lie in 1..{max_batch} (the max batch)")
    return [_input_profile(spec, max_batch, opt, max_sequence) for spec in inputs]


def _input_profile(spec: TensorSpec, max_batch: int, opt_batch: int, max_sequence: int | None) -> ShapeProfile:
    mins, opts, maxs = [], [], []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int):
            lo = mid = hi = dim
        elif axis == 0:
            lo, mid, hi = 1, opt_batch, max_batch
        elif max_sequence is None:
            raise QuantserveError(
                f"input '{spec.name}' has dynamic axis '{dim}'; set its maximum with QUANTSERVE_TRT_MAX_SEQUENCE"
            )
        else:
            lo, mid, hi = 1, max_sequence, max_sequence
        mins.append(lo)
        opts.append(mid)
        maxs.append(hi)
    return ShapeProfile(spec.name, tuple(mins), tuple(opts), tuple(maxs))


def tensorrt_major(version: str) -> int:
    """The major version of a TensorRT version string such as '10.5.0.18'."""
    try:
        return int(version.split(".")[0])
    except ValueError as exc:
        raise QuantserveError(f"cannot read TensorRT version {version!r}") from exc


def build_plan(precision: str, major: int) -> dict[str, bool]:
    """How to build each precision on each TensorRT major version (decision table, tested on CPU).

    INT8 is always explicit Q/DQ in a strongly typed network. FP16 on 10.x uses the FP16 builder
    flag, which TensorRT accepts only on a weakly typed network; 11.x removed that flag and is
    always strongly typed, so the ONNX itself is autocast to FP16 first.
    """
    if precision not in PRECISIONS:
        raise QuantserveError(f"unknown precision '{precision}' for --target tensorrt; choose one of {PRECISIONS}")
    if major < MIN_TENSORRT_MAJOR:
        raise QuantserveError(f"TensorRT {major}.x is too old: --target tensorrt needs TensorRT {MIN_TENSORRT_MAJOR}+")
    fp16 = precision == "fp16"
    return {
        "strongly_typed": not (fp16 and major == MIN_TENSORRT_MAJOR),
        "fp16_flag": fp16 and major == MIN_TENSORRT_MAJOR,
        "autocast_fp16_onnx": fp16 and major > MIN_TENSORRT_MAJOR,
    }


def autocast_fp16(onnx_path: Path, out_path: Path) -> Path:
    """Write an FP16 copy of an ONNX model (onnxconverter-common), keeping FP32 inputs/outputs."""
    import onnx
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx_files.save(model, out_path)
    return out_path


def has_qdq_nodes(onnx_path: Path) -> bool:
    """Whether the ONNX graph holds QuantizeLinear/DequantizeLinear nodes (explicit quantization)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def check_engine_compatible(record: dict[str, Any], runtime: DeviceRuntime) -> list[str]:
    """Refuse an engine built for another TensorRT version or GPU architecture; return warnings.

    A plan file runs only on the TensorRT release and compute capability that built it; a
    different GPU model of the same capability runs it, perhaps with slower tactics (a warning).
    """
    built = _version_key(str(record.get("tensorrt_version", "")))
    if built != _version_key(runtime.tensorrt_version):
        raise QuantserveError(
            f"engine was built with TensorRT {record.get('tensorrt_version')} but this machine has TensorRT "
            f"{runtime.tensorrt_version}; rebuild it here with 'quantserve optimize --target tensorrt'"
        )
    if str(record.get("compute_capability")) != runtime.compute_capability:
        raise QuantserveError(
            f"engine was built for {record.get('gpu_name')} (compute capability {record.get('compute_capability')}) "
            f"but this GPU is {runtime.gpu_name} (compute capability {runtime.compute_capability}); rebuild it here"
        )
    if record.get("gpu_name") != runtime.gpu_name:
        return [f"engine was built on {record.get('gpu_name')}, deployed on {runtime.gpu_name} (same architecture)"]
    return []


def _version_key(version: str) -> tuple[str, ...]:
    # Major.minor.patch decide plan compatibility; the build number does not.
    return tuple(version.split(".")[:3])


def check_max_batch(record: dict[str, Any], max_batch: int) -> None:
    """Refuse a deploy whose max_batch_size exceeds what the engine's profile was built for."""
    built = int(record.get("max_batch", 0))
    if max_batch > built:
        raise QuantserveError(
            f"deploy max batch {max_batch} exceeds the engine's profile maximum {built}; rebuild with "
            f"QUANTSERVE_TRT_MAX_BATCH={max_batch} or deploy with --max-batch {built}"
        )


def calibration_hash(artifact: Artifact) -> str | None:
    """The calibration-data hash the calibrate stage recorded, if this artifact went through it."""
    for stage in reversed(artifact.manifest.stages):
        for key in ("calibration_hash", "cache_key", "data_hash"):
            if stage.get(key):
                return str(stage[key])
    return None


def engine_files(onnx: Artifact, out_dir: Path) -> dict[str, str]:
    """The manifest's `files`: `model` (what deploy copies) becomes the plan; the ONNX it came from stays named."""
    files = dict(onnx.manifest.files)
    source = Path(onnx.path)
    files["onnx"] = source.name if source.parent.resolve() == Path(out_dir).resolve() else str(source)
    files["model"] = ENGINE_FILE
    return files


def tensorrt_missing_reason() -> str | None:
    """Why TensorRT cannot be used here (cheap check, no import), or None if a module is present."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the 'tensorrt' Python module is not installed"
    return None


def run_child(args: list[str], timeout_s: float) -> str:
    """Run `python -m optimizer.tensorrt_build ARGS`; its stdout, or a QuantserveError naming what failed."""
    command = [sys.executable, "-m", "optimizer.tensorrt_build", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise QuantserveError(f"TensorRT {args[0]} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise QuantserveError(child_failure(args[0], done.returncode, done.stderr))
    return done.stdout


def child_failure(step: str, returncode: int, stderr: str) -> str:
    """One line saying why the child process failed: its own error line, or the signal that killed it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [line[len(ERROR_PREFIX) :] for line in lines if line.startswith(ERROR_PREFIX)]
    if own:
        return f"TensorRT {step} failed: {own[-1]}"
    last = lines[-1] if lines else "no output"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"TensorRT {step} process died with {name} (a crash or GPU out of memory); last output: {last}"
    return f"TensorRT {step} failed (exit {returncode}): {last}"


def probe_runtime(timeout_s: float = 120.0) -> DeviceRuntime:
    """TensorRT version and GPU of this machine, asked of a child process (import crashes stay there)."""
    reason = tensorrt_missing_reason()
    if reason:
        raise QuantserveError(
            f"--target tensorrt needs TensorRT {MIN_TENSORRT_MAJOR}+ and an NVIDIA GPU: {reason}; "
            f"build inside the project's optimizer image {OPTIMIZER_IMAGE} ({OPTIMIZER_IMAGE_BUILD}; see "
            "docs/production.md)"
        )
    return DeviceRuntime(**json.loads(run_child(["probe"], timeout_s)))


@dataclass
class TensorRTTarget:
    """`--target tensorrt`: builds `model.plan` in a child process and deploys it as `tensorrt_plan`."""

    name: str = "tensorrt"
    supports_fp16: bool = True
    settings: TensorRTSettings | None = None
    _runtime: DeviceRuntime | None = field(default=None, repr=False)

    def preflight(self) -> DeviceRuntime:
        """Fail in one line, before any expensive stage, if TensorRT or the GPU is missing."""
        if self._runtime is None:
            self._runtime = probe_runtime()
        return self._runtime

    def build(self, onnx: Artifact, out_dir: Path) -> Artifact:
        """Build the engine into `out_dir/model.plan`, written atomically, with its engine record."""
        runtime = self.preflight()
        settings = self.settings or TensorRTSettings.from_env()
        precision = onnx.manifest.precision
        plan = build_plan(precision, tensorrt_major(runtime.tensorrt_version))
        if precision == "int8" and not has_qdq_nodes(onnx.path):
            raise QuantserveError(f"{onnx.path}: int8 needs the Q/DQ ONNX from calibration; it has no Q/DQ nodes")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        source = autocast_fp16(onnx.path, out_dir / "model_fp16.onnx") if plan["autocast_fp16_onnx"] else onnx.path
        profiles = optimization_profiles(
            onnx.manifest.inputs, settings.max_batch, settings.max_sequence, settings.opt_batch
        )
        record = self._run_build(source, out_dir, plan, profiles, settings)
        record.update(precision=precision, calibration_hash=calibration_hash(onnx), max_batch=settings.max_batch)
        engine = out_dir / ENGINE_FILE
        artifact = onnx.with_stage(
            engine,
            {"stage": "build", "target": self.name, **record},
            target=self.name,
            files=engine_files(onnx, out_dir),
            extra={**onnx.manifest.extra, "tensorrt": record},
        )
        artifact.manifest.save(out_dir)
        return artifact

    def _run_build(
        self, source: Path, out_dir: Path, plan: dict[str, bool], profiles: list[ShapeProfile], s: TensorRTSettings
    ) -> dict[str, Any]:
        partial = out_dir / f".{ENGINE_FILE}.partial"
        result = out_dir / ".tensorrt_build.json"
        spec: dict[str, Any] = {
            "onnx": str(source),
            "engine": str(partial),
            "result": str(result),
            "profiles": [asdict(p) for p in profiles],
            "workspace_bytes": s.workspace_mib << 20,
            "optimization_level": s.optimization_level,
            "timing_cache": str(s.timing_cache),
            **plan,
        }
        spec_path = out_dir / ".tensorrt_build_spec.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        started = time.perf_counter()
        try:
            run_child(["build", str(spec_path)], s.timeout_s)
            record = json.loads(result.read_text())
            os.replace(partial, out_dir / ENGINE_FILE)
        finally:
            for leftover in (partial, result, spec_path):
                leftover.unlink(missing_ok=True)
        record["build_seconds"] = round(time.perf_counter() - started, 3)
        record["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["profiles"] = spec["profiles"]
        return record

    def check_deploy(self, artifact: Artifact, max_batch: int) -> None:
        """Refuse a max_batch_size above the engine's optimization profile."""
        check_max_batch(artifact.manifest.extra.get("tensorrt", {}), max_batch)

    def triton_layout(self, artifact: Artifact) -> TritonLayout:
        """`platform: tensorrt_plan` on a GPU instance, after checking this machine can run the engine."""
        record = artifact.manifest.extra.get("tensorrt")
        if not record:
            raise QuantserveError(f"{artifact.path}: no TensorRT engine record in its manifest; rebuild it")
        if os.environ.get(SKIP_CHECK_ENV) != "1":
            for warning in check_engine_compatible(record, self._deploy_runtime()):
                print(f"quantserve: warning: {warning}", file=sys.stderr)
        return TritonLayout(
            runtime={"platform": "tensorrt_plan"},
            version_files={ENGINE_FILE: Path(artifact.path)},
            instance_kind="KIND_GPU",
        )

    def _deploy_runtime(self) -> DeviceRuntime:
        try:
            return self.preflight()
        except QuantserveError as exc:
            raise QuantserveError(
                f"cannot check the engine against this machine ({exc}); deploy where it will be served, "
                f"or set {SKIP_CHECK_ENV}=1 to skip the check"
            ) from exc


TARGET = TensorRTTarget()
