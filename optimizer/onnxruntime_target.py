"""ONNX Runtime target: deploys the Q/DQ (INT8) or FP32 ONNX as `platform: "onnxruntime_onnx"`.

For Triton images that carry the ONNX Runtime backend (the NGC image). On a GPU instance it can
hand the graph to ONNX Runtime's TensorRT execution provider through Triton's
`optimization { execution_accelerators { gpu_execution_accelerator [...] } }`, with the
precision matched to the model (INT8 for a Q/DQ graph) and engines cached beside the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optimizer import onnx_files
from optimizer.targets import TritonLayout
from quantserve.artifact import MODEL_FILE, Artifact
from quantserve.errors import QuantserveError

DEVICES = ("cpu", "gpu")
# precision of the ONNX -> `precision_mode` of ONNX Runtime's TensorRT provider in Triton
TRT_PRECISION_MODES = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
# what makes `--precision fp16` run in FP16 on this target (its refusal and `optimize --help` say it)
FP16_ROUTE = "ONNX Runtime's TensorRT accelerator on a GPU (QUANTSERVE_ORT_TENSORRT=1)"


@dataclass(frozen=True)
class OnnxRuntimeSettings:
    """Where the model runs and whether ONNX Runtime hands it to TensorRT (GPU only)."""

    device: str = "cpu"
    tensorrt_accelerator: bool = False
    workspace_bytes: int = 1 << 30
    engine_cache_path: str | None = "/tmp/quantserve-ort-trt-cache"

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise QuantserveError(f"onnxruntime target: device must be one of {DEVICES}, got '{self.device}'")
        if self.tensorrt_accelerator and self.device != "gpu":
            raise QuantserveError("onnxruntime target: the TensorRT accelerator needs device 'gpu'")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OnnxRuntimeSettings:
        """`QUANTSERVE_ORT_DEVICE=cpu|gpu`, `QUANTSERVE_ORT_TENSORRT=1` (implies gpu)."""
        env = os.environ if environ is None else environ
        trt = env.get("QUANTSERVE_ORT_TENSORRT", "0").lower() in ("1", "true", "yes", "on")
        device = env.get("QUANTSERVE_ORT_DEVICE", "gpu" if trt else "cpu")
        return replace(cls(), device=device, tensorrt_accelerator=trt)


def tensorrt_accelerator(precision: str, settings: OnnxRuntimeSettings) -> dict[str, Any]:
    """The `gpu_execution_accelerator` entry for ONNX Runtime's TensorRT provider, as a config dict."""
    if precision not in TRT_PRECISION_MODES:
        raise QuantserveError(f"onnxruntime target: unknown precision '{precision}'")
    parameters = {
        "precision_mode": TRT_PRECISION_MODES[precision],
        "max_workspace_size_bytes": str(settings.workspace_bytes),
    }
    if settings.engine_cache_path:
        parameters.update(trt_engine_cache_enable="1", trt_engine_cache_path=settings.engine_cache_path)
    return {"name": "tensorrt", "parameters": parameters}


def config_extra(precision: str, settings: OnnxRuntimeSettings) -> dict[str, Any]:
    """The extra `config.pbtxt` fields for this target (the accelerator block, when asked for)."""
    if not settings.tensorrt_accelerator:
        return {}
    accelerator = tensorrt_accelerator(precision, settings)
    return {"optimization": {"execution_accelerators": {"gpu_execution_accelerator": [accelerator]}}}


@dataclass
class OnnxRuntimeTarget:
    """`--target onnxruntime`: the ONNX itself is the engine; Triton's ONNX Runtime backend runs it."""

    name: str = "onnxruntime"
    settings: OnnxRuntimeSettings | None = None
    fp16_route: str = FP16_ROUTE

    @property
    def supports_fp16(self) -> bool:
        """FP16 only through ONNX Runtime's TensorRT accelerator: without it Triton's ONNX Runtime backend runs the
        FP32 graph, so an fp16 build shipped FLOAT32 weights labelled fp16 (session 62)."""
        return self._settings().tensorrt_accelerator

    def preflight(self) -> None:
        """Nothing to check before the pipeline: ONNX Runtime runs inside Triton, not here."""
        self._settings()

    def check_deploy(self, artifact: Artifact, max_batch: int) -> None:
        """Any batch size: the ONNX model has a dynamic batch axis."""

    def _settings(self) -> OnnxRuntimeSettings:
        return self.settings or OnnxRuntimeSettings.from_env()

    def build(self, onnx: Artifact, out_dir: Path) -> Artifact:
        """Copy the ONNX to `out_dir/model.onnx` (atomically) and record the serving settings."""
        settings = self._settings()
        source = Path(onnx.path)
        if not source.is_file():
            raise QuantserveError(f"{source}: ONNX model not found")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / MODEL_FILE
        if source.resolve() != target.resolve():
            partial = out_dir / f".{MODEL_FILE}.partial"
            onnx_files.copy(source, partial)  # a large model's weights file keeps the name the model gives it
            os.replace(partial, target)
        record = {"device": settings.device, "tensorrt_accelerator": settings.tensorrt_accelerator}
        artifact = onnx.with_stage(
            target,
            {"stage": "build", "target": self.name, **record},
            target=self.name,
            files={**onnx.manifest.files, "model": MODEL_FILE},
            extra={**onnx.manifest.extra, "onnxruntime": record},
        )
        artifact.manifest.save(out_dir)
        return artifact

    def triton_layout(self, artifact: Artifact) -> TritonLayout:
        """`platform: onnxruntime_onnx`, CPU or GPU instances, the TensorRT accelerator if recorded."""
        recorded = artifact.manifest.extra.get("onnxruntime")
        settings = OnnxRuntimeSettings(**recorded) if recorded else self._settings()
        return TritonLayout(
            runtime={"platform": "onnxruntime_onnx"},
            version_files={MODEL_FILE: Path(artifact.path), **onnx_files.external_files(artifact.path)},
            config_extra=config_extra(artifact.manifest.precision, settings),
            instance_kind="KIND_GPU" if settings.device == "gpu" else "KIND_CPU",
        )


TARGET = OnnxRuntimeTarget()
