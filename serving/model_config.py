"""Triton `config.pbtxt` in three steps: typed dataclasses that validate themselves → a plain dict → protobuf text.

The text is produced only when writing, through Triton's own `model_config_pb2` (shipped in
`tritonclient`), so a config that would not parse in Triton is never written.
What deploy records of the build in it is `serving.build_parameters`', what a new config changes for the served
one's clients `serving.config_changes`'.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantserve.artifact import TensorSpec
from quantserve.errors import QuantserveError
from quantserve.files import write_failed

CONFIG_NAME = "config.pbtxt"
# numpy dtype name -> Triton DataType
NUMPY_TO_TRITON = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "object": "TYPE_STRING",
}
INSTANCE_KINDS = ("KIND_AUTO", "KIND_CPU", "KIND_GPU", "KIND_MODEL")
RUNTIME_KEYS = ("backend", "platform")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION_NAME = re.compile(r"[1-9][0-9]{0,18}")  # ASCII digits only: '²'.isdigit() is True, int('²') raises
# Triton reads a version folder's name with std::stoll: above this it throws out_of_range, uncaught, and aborts
MAX_VERSION = 2**63 - 1


@dataclass(frozen=True)
class TensorConfig:
    """One input or output; `dims` exclude the batch axis when the model batches, -1 marks a dynamic dim.

    `reshape`: the shape the model itself has, where it differs from `dims` — a batched tensor with one value
    per sample (an argmax label, a score: model shape [N]) is served as dims [1] reshaped to [], as Triton
    requires non-empty dims (its error: "model output 'label' must specify 'dims'").
    """

    name: str
    dtype: str
    dims: tuple[int, ...]
    allow_ragged_batch: bool = False
    reshape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise QuantserveError("model config: a tensor has an empty name")
        if self.dtype not in NUMPY_TO_TRITON:
            raise QuantserveError(f"model config: tensor '{self.name}' has dtype '{self.dtype}' Triton cannot carry")
        if any(not isinstance(d, int) or d == 0 or d < -1 for d in self.dims):
            raise QuantserveError(f"model config: tensor '{self.name}' has invalid dims {list(self.dims)}")

    @classmethod
    def from_spec(cls, spec: TensorSpec, batched: bool, allow_ragged_batch: bool = False) -> TensorConfig:
        """From a manifest TensorSpec: drop the batch axis when batched, named (dynamic) axes become -1."""
        shape = spec.shape[1:] if batched else spec.shape
        dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)
        if batched and not dims:
            return cls(spec.name, spec.dtype, (1,), allow_ragged_batch, reshape=())
        if not dims:  # tritonserver 2.51: "cannot have empty reshape for non-batching model as scalar tensors are
            raise QuantserveError(  # not supported", the model never loads
                f"tensor '{spec.name}' is a scalar (rank 0), and Triton serves no scalar in a model that does not "
                "batch (max_batch_size 0): give the model's graph an Unsqueeze so it answers shape [1], and build it "
                "again"
            )
        return cls(spec.name, spec.dtype, dims, allow_ragged_batch)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "data_type": NUMPY_TO_TRITON[self.dtype], "dims": list(self.dims)}
        if self.allow_ragged_batch:
            data["allow_ragged_batch"] = True
        if self.reshape is not None:
            data["reshape"] = {"shape": list(self.reshape)}
        return data


def default_preferred_batch_sizes(max_batch_size: int) -> tuple[int, ...]:
    """The four largest powers of two up to `max_batch_size`, plus `max_batch_size` itself (32 → 4, 8, 16, 32)."""
    powers = [2**k for k in range(max_batch_size.bit_length()) if 2**k <= max_batch_size]
    sizes = sorted({*powers[-4:], max_batch_size})
    return tuple(s for s in sizes if s > 0)


@dataclass(frozen=True)
class QueuePolicy:
    """A bounded queue: at most `max_queue_size` waiting requests (0: unbounded), each rejected after
    `timeout_us` in the queue (0: never), so overload is refused fast instead of queueing without bound.

    On Triton 2.51 (embedded, NGC 24.10) any bound stalls the dynamic batcher 0.5 s at a time even with the queue
    near empty (triton-inference-server/server#8870; measured in `serving.queue_policy_stall`), so deploy writes
    none unless asked and warns when asked."""

    max_queue_size: int = 0
    timeout_us: int = 0

    def __post_init__(self) -> None:
        if self.max_queue_size < 0:
            raise QuantserveError(f"model config: max queue size must be ≥ 0, got {self.max_queue_size}")
        if self.timeout_us < 0:
            raise QuantserveError(f"model config: queue timeout must be ≥ 0 µs, got {self.timeout_us}")

    @property
    def bounded(self) -> bool:
        return self.max_queue_size > 0 or self.timeout_us > 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"timeout_action": "REJECT", "allow_timeout_override": False}
        if self.max_queue_size:
            data["max_queue_size"] = self.max_queue_size
        if self.timeout_us:
            data["default_timeout_microseconds"] = self.timeout_us
        return data


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions Triton serves: the `latest` N (default 1), or exactly `specific` ones (a rollback)."""

    latest: int = 1
    specific: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.specific and self.latest < 1:
            raise QuantserveError(f"model config: live versions must be ≥ 1, got {self.latest}")
        if any(v < 1 for v in self.specific):
            raise QuantserveError(f"model config: versions must be ≥ 1, got {list(self.specific)}")

    def to_dict(self) -> dict[str, Any]:
        if self.specific:
            return {"specific": {"versions": sorted(set(self.specific))}}
        return {"latest": {"num_versions": self.latest}}


@dataclass(frozen=True)
class DynamicBatching:
    """Triton's dynamic batcher: the batch sizes it aims for and how long a request may wait for company."""

    preferred_batch_size: tuple[int, ...]
    max_queue_delay_microseconds: int = 500
    queue: QueuePolicy = QueuePolicy()

    def __post_init__(self) -> None:
        if any(s < 1 for s in self.preferred_batch_size):
            raise QuantserveError(
                f"model config: preferred batch sizes must be ≥ 1, got {list(self.preferred_batch_size)}"
            )
        if self.max_queue_delay_microseconds < 0:
            raise QuantserveError(
                f"model config: max queue delay must be ≥ 0 µs, got {self.max_queue_delay_microseconds}"
            )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "preferred_batch_size": sorted(set(self.preferred_batch_size)),
            "max_queue_delay_microseconds": self.max_queue_delay_microseconds,
        }
        if self.queue.bounded:
            data["default_queue_policy"] = self.queue.to_dict()
        return data


@dataclass(frozen=True)
class InstanceGroup:
    """How many copies of the model run, and on what kind of device."""

    kind: str = "KIND_CPU"
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind not in INSTANCE_KINDS:
            raise QuantserveError(
                f"model config: instance kind '{self.kind}' is not one of {', '.join(INSTANCE_KINDS)}"
            )
        if self.count < 1:
            raise QuantserveError(f"model config: instance count must be ≥ 1, got {self.count}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count}


@dataclass
class ModelConfig:
    """One Triton model's configuration; validated on construction."""

    name: str
    runtime: dict[str, str]
    inputs: list[TensorConfig]
    outputs: list[TensorConfig]
    max_batch_size: int = 0
    dynamic_batching: DynamicBatching | None = None
    instance_groups: list[InstanceGroup] = field(default_factory=lambda: [InstanceGroup()])
    parameters: dict[str, str] = field(default_factory=dict)
    # passed through as-is, e.g. {"execution_accelerators": {"gpu_execution_accelerator": [...]}}
    optimization: dict[str, Any] | None = None
    version_policy: VersionPolicy = VersionPolicy()

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if len(self.runtime) != 1 or next(iter(self.runtime)) not in RUNTIME_KEYS:
            raise QuantserveError(
                f"model config: runtime must be one of {{'backend': …}} or {{'platform': …}}, got {self.runtime}"
            )
        if self.max_batch_size < 0:
            raise QuantserveError(f"model config: max batch size must be ≥ 0, got {self.max_batch_size}")
        if not self.inputs or not self.outputs:
            raise QuantserveError(f"model config: '{self.name}' needs at least one input and one output")
        self._check_batching()
        names = [t.name for t in self.inputs + self.outputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise QuantserveError(f"model config: tensor names used twice: {duplicates}")

    def _check_batching(self) -> None:
        if self.dynamic_batching is None:
            return
        if self.max_batch_size == 0:
            raise QuantserveError("model config: dynamic batching needs max batch size > 0")
        too_big = [s for s in self.dynamic_batching.preferred_batch_size if s > self.max_batch_size]
        if too_big:
            raise QuantserveError(
                f"model config: preferred batch sizes {too_big} exceed the max batch size {self.max_batch_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as the dict form of Triton's ModelConfig message (json_format field names)."""
        data: dict[str, Any] = {
            "name": self.name,
            **self.runtime,
            "max_batch_size": self.max_batch_size,
            "input": [t.to_dict() for t in self.inputs],
            "output": [t.to_dict() for t in self.outputs],
            "instance_group": [g.to_dict() for g in self.instance_groups],
            "version_policy": self.version_policy.to_dict(),
        }
        if self.dynamic_batching is not None:
            data["dynamic_batching"] = self.dynamic_batching.to_dict()
        if self.parameters:
            data["parameters"] = {k: {"string_value": str(v)} for k, v in sorted(self.parameters.items())}
        if self.optimization:
            data["optimization"] = self.optimization
        return data


def check_model_name(name: str) -> None:
    """Raise unless `name` is a safe Triton model (and folder) name."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise QuantserveError(
            f"invalid model name '{name}': use up to 128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )


def is_version_name(name: str) -> bool:
    """Whether `name` (a folder's, a served version's) is a version as Triton reads it and quantserve numbers them:
    ASCII digits without a leading zero, 1 … 2**63−1. The one test for it: `str.isdigit` let '²' through (int('²')
    raises) and counted '٣' as version 3, which Triton ignores."""
    return VERSION_NAME.fullmatch(name) is not None and int(name) <= MAX_VERSION


def check_version_name(version: str | int) -> int:
    """The version as an integer; raise unless it is a plain positive number (no path, no sign) Triton can read."""
    if not is_version_name(str(version)):
        raise QuantserveError(
            f"invalid model version '{version}': use a positive whole number such as 2 (at most {MAX_VERSION})"
        )
    return int(version)


def merge_extra(config: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`config` with a target's extra fields added; `parameters` merge key by key, other fields replace."""
    merged = dict(config)
    for key, value in extra.items():
        if key == "parameters":
            merged["parameters"] = {**merged.get("parameters", {}), **value}
        else:
            merged[key] = value
    return merged


def to_protobuf_text(config: dict[str, Any]) -> str:
    """Protobuf text for Triton's ModelConfig; a field Triton does not know is a QuantserveError."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        message = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    except json_format.ParseError as exc:
        raise QuantserveError(f"model config: not a valid Triton ModelConfig ({exc})") from exc
    return str(text_format.MessageToString(message))


def parse_config(path: Path) -> dict[str, Any]:
    """Read a `config.pbtxt` with Triton's own message type, back to the dict form."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        message = text_format.Parse(Path(path).read_text(), model_config_pb2.ModelConfig())
    except (OSError, text_format.ParseError) as exc:
        raise QuantserveError(f"{path}: not a readable Triton config ({exc})") from exc
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))


def write_config(config: dict[str, Any], model_dir: Path) -> Path:
    """Write `model_dir/config.pbtxt` atomically (temp file, fsync, os.replace).

    The file gets the usual 0o666-less-umask mode (mkstemp's 0600 kept a Triton container running as
    another user from reading it).
    """
    text = to_protobuf_text(config)
    path = Path(model_dir) / CONFIG_NAME
    temp = Path(model_dir) / f".{CONFIG_NAME}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:  # `rollback` on a full disk said "[Errno 28] No space left on device", no path (session 46)
        raise write_failed(path, temp, exc) from exc
    return path
