"""Artifacts passed between stages: a file plus a small typed manifest, saved as JSON beside it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from quantserve.json_files import strict_json

MANIFEST_NAME = "manifest.json"
# The ONNX model's file name in a build folder and in a Triton version folder.
MODEL_FILE = "model.onnx"
# manifest.extra key: the sha256 of the model file (files.model) as the build wrote it; deploy checks it.
MODEL_SHA256 = "model_sha256"
STATE_PAIRS = "state_pairs"  # extra: a recurrent model's [{"output", "input"}] (optimizer.state_loop)
# extra: the FP32 reference graph's word on the outputs (optimizer.graph_words): {"sigmoid": [...], "token_axes": {...},
# "state": [...]}
GRAPH_OUTPUTS = "graph_outputs"
# extra: the kinds the build was told (optimize --output-kind NAME=kind), {name: kind}; deploy records them for evaluate
TYPED_KINDS = "typed_kinds"
# manifest.extra key: how the build takes requests; NO_BATCHING ("none", optimize --unbatched): one request at a time,
# its inputs' full shapes, which deploy serves with max_batch_size 0 (absent: rows along axis 0 are batched).
BATCHING = "batching"
# manifest.extra key: an --unbatched build verified with whole samples (`quantserve.data.whole_samples`: data with
# one axis more than the inputs, each data[i] one request): deploy serves its inputs' axis 0 as the graph has it.
REQUESTS = "requests"
WHOLE_SAMPLES = "whole samples"
NO_BATCHING = "none"
# The max_batch_size deploy serves a batched build with where none is asked (serving.batch_axes), and the largest batch
# verification judges a build whose answers depend on their batch neighbours at (optimizer.verify), so the two agree.
DEFAULT_MAX_BATCH = 32
# Dimension values: a positive int is fixed; a string names a dynamic axis ("batch", "sequence").
Dim = int | str


def file_sha256(path: Path) -> str:
    """The file's sha256, read in chunks (a model file may be gigabytes; its external weights are not included)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, numpy dtype name and shape (dynamic axes named by strings)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def has_batch_axis(self) -> bool:
        return bool(self.shape) and isinstance(self.shape[0], str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


@dataclass
class Manifest:
    """What a stage produced: the model's I/O, precision, target, per-stage records and verification."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: str = "fp32"
    target: str = "embedded"
    files: dict[str, str] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unbatched(self) -> bool:
        """Built with `optimize --unbatched`: Triton must serve it with max_batch_size 0."""
        return self.extra.get(BATCHING) == NO_BATCHING

    @property
    def whole_samples(self) -> bool:
        """An --unbatched build whose requests are whole samples (axis 0 a sample's frames, not one data row)."""
        return self.unbatched and self.extra.get(REQUESTS) == WHOLE_SAMPLES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("inputs", "outputs"):
            data[key] = [dict(asdict(t), shape=list(t.shape)) for t in getattr(self, key)]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        fields = dict(data)
        fields["inputs"] = [TensorSpec.from_dict(t) for t in data["inputs"]]
        fields["outputs"] = [TensorSpec.from_dict(t) for t in data["outputs"]]
        return cls(**fields)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(strict_json(self.to_dict(), indent=2, sort_keys=True) + "\n")  # NaN as null
        return path

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise QuantserveError(f"{directory}: no {MANIFEST_NAME}; is this the output of 'quantserve optimize'?")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuantserveError(f"{path}: not a valid quantserve manifest ({exc})") from exc


@dataclass
class Artifact:
    """A model file produced by a stage, with the manifest that describes it."""

    path: Path
    manifest: Manifest

    def with_stage(self, path: Path, record: dict[str, Any], **changes: Any) -> Artifact:
        """A new artifact at `path`, the manifest copied with `record` appended to its stages."""
        data = self.manifest.to_dict()
        data.update(changes)
        data["stages"] = [*self.manifest.stages, record]
        return Artifact(Path(path), Manifest.from_dict(data))
