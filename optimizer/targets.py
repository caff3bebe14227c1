"""Engine targets: what `optimize --target` builds and how `deploy` lays it out for Triton.

A target is one module exposing `TARGET` (an `EngineTarget`), registered under the entry-point
group `quantserve.targets` (pyproject.toml's `[project.entry-points."quantserve.targets"]`), so
a new backend is one file plus one line, in this project or in another installed package
(docs/adding-a-target.md). This registry is the interface between build time and deploy, so
neither reaches into the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from quantserve.artifact import Artifact
from quantserve.errors import QuantserveError

# Every precision `optimize --precision` knows; a target says which it builds (`supports_fp16`).
PRECISIONS = ("fp32", "fp16", "int8")


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

    @property
    def supports_fp16(self) -> bool:
        """Whether `optimize --precision fp16` can build for this target as set up now (a GPU engine can; the CPU
        one cannot; ONNX Runtime only with its TensorRT accelerator)."""
        ...

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


ENTRY_POINT_GROUP = "quantserve.targets"


def _registered() -> dict[str, EntryPoint]:
    """Every installed target's entry point by name (this project's own and any other package's)."""
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def target_names() -> tuple[str, ...]:
    """The registered target names, sorted: the CLI's `--target` choices."""
    return tuple(sorted(_registered()))


def get_target(name: str) -> EngineTarget:
    """The target called `name`, or a QuantserveError listing the registered ones."""
    registered = _registered()
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none (is quantserve installed? pip install -e .)"
        raise QuantserveError(f"unknown target '{name}'; choose one of: {known}")
    point = registered[name]
    try:
        target = point.load()
    except ImportError as exc:
        raise QuantserveError(f"target '{name}' ({point.value}) cannot be imported: {exc}") from exc
    if getattr(target, "name", None) != name:
        raise QuantserveError(f"target '{name}' ({point.value}) calls itself '{getattr(target, 'name', None)}'")
    return target  # type: ignore[no-any-return]


def fp16_routes(but: str = "") -> list[str]:
    """Every way to an FP16 build, whatever the environment now: a target that builds it ("tensorrt"), or one that
    needs its `fp16_route` on first ("onnxruntime with ONNX Runtime's TensorRT accelerator …"); `but` left out."""
    routes = []
    for name in target_names():
        target = get_target(name)
        route = getattr(target, "fp16_route", "")
        if name != but and (route or getattr(target, "supports_fp16", False)):
            routes.append(f"{name} with {route}" if route else name)
    return routes


def fp16_refusal(name: str) -> str:
    """Why `--precision fp16` cannot build for target `name` now, and what would make it: its own `fp16_route` where it
    has one, else the other targets' routes."""
    route = getattr(get_target(name), "fp16_route", "")
    others = ", or ".join(fp16_routes(but=name))
    if route:
        alternative = f"; or --target {others}" if others else ""
        return f"precision fp16 on target '{name}' needs {route}, without which it runs the model in FP32{alternative}"
    return f"precision fp16 needs a GPU target, not '{name}': {others or 'none is installed'}"


def target_mismatch(name: str, recorded: str) -> str:
    """Why a target's build that records another target's name is refused: deploy lays a build out by its manifest's
    target alone, so a plugin delegating to the embedded build (`target: embedded`) deployed as embedded, unchecked
    (docs/adding-a-target.md; session 62)."""
    return (
        f"target '{name}' built a model recorded as target '{recorded}': deploy would lay it out as '{recorded}'; "
        f"its build must set the manifest's target to '{name}' (docs/adding-a-target.md); nothing written"
    )
