"""Engine targets: what `optimize --target` builds and how `deploy` lays it out for Triton.

Each target has its own module (`embedded`, `onnxruntime_target`, `tensorrt`); this registry is
the interface between build time and deploy, so neither reaches into the other's internals.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from quantserve.artifact import Artifact
from quantserve.errors import QuantserveError


@dataclass(frozen=True)
class TritonLayout:
    """How a built artifact appears in a Triton model repository."""

    # {"backend": "python"} or {"platform": "onnxruntime_onnx"} / {"platform": "tensorrt_plan"}
    runtime: dict[str, str]
    # file name inside the version folder -> source path
    version_files: dict[str, Path]
    # extra config.pbtxt fields, already as the dict that becomes protobuf text
    config_extra: dict[str, Any] = field(default_factory=dict)
    instance_kind: str = "KIND_CPU"


class EngineTarget(Protocol):
    """A build target: turns the (Q/DQ or FP32) ONNX artifact into a deployable engine."""

    name: str

    def preflight(self) -> object:
        """Fail in one line, before any expensive stage, if this machine cannot build for the target."""
        ...

    def build(self, onnx: Artifact, out_dir: Path) -> Artifact:
        """Build the engine for this target into `out_dir`; return the artifact with its manifest."""
        ...

    def triton_layout(self, artifact: Artifact) -> TritonLayout:
        """Describe how `deploy` writes this artifact into a Triton model repository."""
        ...

    def check_deploy(self, artifact: Artifact, max_batch: int) -> None:
        """Refuse, before anything is written, deploy settings the built artifact cannot serve."""
        ...


# target name -> module under `optimizer` exposing `TARGET`
TARGET_MODULES = {"embedded": "embedded", "onnxruntime": "onnxruntime_target", "tensorrt": "tensorrt"}


def get_target(name: str) -> EngineTarget:
    """The target called `name`, or a QuantserveError listing the known ones."""
    if name not in TARGET_MODULES:
        raise QuantserveError(f"unknown target '{name}'; choose one of: {', '.join(TARGET_MODULES)}")
    module = importlib.import_module(f"optimizer.{TARGET_MODULES[name]}")
    return module.TARGET
