"""Two profiles of one graph side by side (`quantserve profile`): per ONNX op type and per node, each model's
kernel ms, the speedup and each one's share, with the kernels ORT ran under another name (its fusions).

Only compares `optimizer.profile.ModelProfile`s already measured; measures nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optimizer.profile import ModelProfile, NodeTime, nan_for_null, op_type_totals
from quantserve.json_files import strict_json


@dataclass(frozen=True)
class OpTypeRow:
    """One ONNX op type's kernel ms per run in the reference and the model, speedup and share of each total."""

    op_type: str
    reference_ms: float
    model_ms: float
    speedup: float | None  # reference_ms / model_ms; None where either ran no kernel of this type
    reference_share: float
    model_share: float
    runs_as: tuple[str, ...] = ()  # ORT's kernels for it where they differ from the ONNX op type (its fusions)


@dataclass(frozen=True)
class NodeRow:
    """One ONNX node (or ORT-inserted kernel) side by side; 0.0 where that model ran no kernel for it."""

    node: str
    op_type: str
    reference_ms: float
    model_ms: float
    speedup: float | None
    inserted: bool  # ORT added it (layout Transpose/Reorder); not a node of the ONNX file
    runs_as: tuple[str, ...] = ()  # ORT's kernels for it where they differ from the ONNX op type (its fusions)


@dataclass
class BuildProfile:
    """A build's FP32 reference and its model profiled on the same inputs, compared per op type and node."""

    build: str
    precision: str  # the model's precision from the manifest (int8, fp32, …)
    cpu: str
    inputs: str  # where the inputs came from, in words
    batch: int
    batches: int
    repeats: int
    reference: ModelProfile
    model: ModelProfile
    op_types: list[OpTypeRow]
    nodes: list[NodeRow]
    run_speedup: float | None
    timing: str = ""  # how the two models were timed, in words
    others_share: float | None = None  # the larger of the two models' median shares of others' CPU
    busy: bool = False  # others_share above BUSY_SHARE: the figures are not to be trusted
    notes: list[str] = field(default_factory=list)  # the busy machine; an FP32 build with nothing to compare

    def save(self, path: Path) -> Path:
        """Strict JSON: a NaN timing as null (a bare NaN is refused by jq and JavaScript's JSON.parse)."""
        Path(path).write_text(strict_json(asdict(self), indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> BuildProfile:
        """A saved profile; a timing or share written as null read back as NaN (a speedup's null stays None)."""
        data = json.loads(Path(path).read_text())
        fields = {**data, "reference": ModelProfile.from_dict(data["reference"])}
        fields["model"] = ModelProfile.from_dict(data["model"])
        fields["op_types"] = [OpTypeRow(**_row(row, _OP_TYPE_FIGURES)) for row in data["op_types"]]
        fields["nodes"] = [NodeRow(**_row(row, _NODE_FIGURES)) for row in data["nodes"]]
        return cls(**fields)


_OP_TYPE_FIGURES = ("reference_ms", "model_ms", "reference_share", "model_share")
_NODE_FIGURES = ("reference_ms", "model_ms")


def _row(row: dict[str, Any], figures: tuple[str, ...]) -> dict[str, Any]:
    return {**nan_for_null(row, figures), "runs_as": tuple(row.get("runs_as", ()))}


def speedup(reference_ms: float, model_ms: float) -> float | None:
    """reference ms / model ms (above 1: the model is faster); None where either is zero."""
    return reference_ms / model_ms if reference_ms > 0 and model_ms > 0 else None


def compare_op_types(reference: ModelProfile, model: ModelProfile) -> list[OpTypeRow]:
    """Per ONNX op type, both models' kernel ms, speedup and shares, the most expensive first."""
    ref, mod = op_type_totals(reference.nodes), op_type_totals(model.nodes)
    ref_total, mod_total = sum(ref.values()) or 1.0, sum(mod.values()) or 1.0
    kernels = _kernels_run(n for profile in (reference, model) for n in profile.nodes if n.onnx_node is not None)
    rows = [
        OpTypeRow(
            op,
            ref.get(op, 0.0),
            mod.get(op, 0.0),
            speedup(ref.get(op, 0.0), mod.get(op, 0.0)),
            ref.get(op, 0.0) / ref_total,
            mod.get(op, 0.0) / mod_total,
            kernels.get(op, ()),
        )
        for op in set(ref) | set(mod)
    ]
    return sorted(rows, key=lambda r: (-(r.reference_ms + r.model_ms), r.op_type))


def compare_nodes(reference: ModelProfile, model: ModelProfile) -> list[NodeRow]:
    """Per node (ONNX name where mapped), both models' kernel ms, the most expensive first."""
    keyed: dict[str, dict[str, Any]] = {}
    for side, profile in (("reference_ms", reference), ("model_ms", model)):
        for n in profile.nodes:
            row = keyed.setdefault(
                n.onnx_node or n.name, {"op_type": n.onnx_op_type, "inserted": n.onnx_node is None, "nodes": []}
            )
            row[side] = row.get(side, 0.0) + n.ms
            row["nodes"].append(n)
    rows = [
        NodeRow(
            name,
            r["op_type"],
            r.get("reference_ms", 0.0),
            r.get("model_ms", 0.0),
            speedup(r.get("reference_ms", 0.0), r.get("model_ms", 0.0)),
            r["inserted"],
            _kernels_run(r["nodes"]).get(r["op_type"], ()),
        )
        for name, r in keyed.items()
    ]
    return sorted(rows, key=lambda r: (-(r.reference_ms + r.model_ms), r.node))


def _kernels_run(nodes: Iterable[NodeTime]) -> dict[str, tuple[str, ...]]:
    """Per ONNX op type, the kernels ORT ran for it under another name (a fused MatMulIntegerToFloat for the
    MatMulInteger, Cast and Mul of a dynamic INT8 MatMul), sorted."""
    found: dict[str, set[str]] = defaultdict(set)
    for n in nodes:
        if n.op_type != n.onnx_op_type:
            found[n.onnx_op_type].add(n.op_type)
    return {op: tuple(sorted(kernels)) for op, kernels in found.items()}
