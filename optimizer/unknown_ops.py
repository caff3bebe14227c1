"""Ops ONNX Runtime has no kernel for, said whole, with the outputs a model cut short of them would keep.

MediaPipe's face mesh with attention, converted from TFLite by tf2onnx, keeps MediaPipe's own ops as nodes of the
default domain (TFL_Landmarks2TransformMatrix ×3, TFL_TransformTensorBilinear ×3, TFL_TransformLandmarks ×5). ORT names
only the first, after that node's inputs and outputs, so a line cut at a length lost the op's name. The graph says
them all, and which outputs depend on none of them: a model cut to those outputs loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx

from optimizer.graph_walk import node_subgraphs, walk_nodes

# ORT's words for a node whose op it does not know: the default domain's "No Op registered for X with domain_version
# of 15" (INVALID_GRAPH), another domain's "Fatal error: com.example:X(-1) is not a registered function/op" (FAIL)
UNKNOWN_OP = re.compile(r"No Op registered for \S+ with domain_version|is not a registered function/op")
ONNX_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class UnknownOp:
    """One op ORT has no kernel for: its type, domain, how many nodes hold it and the first one's name."""

    op_type: str
    domain: str
    nodes: int
    first: str

    def __str__(self) -> str:
        nodes = f"{self.nodes} nodes, first" if self.nodes > 1 else "1 node"
        named = f"{nodes} '{self.first}'" if self.first else nodes.removesuffix(", first")
        return f"op {self.op_type} (domain '{self.domain}', {named})"


def unknown_ops_advice(reason: str, path: str | Path, shown: str | Path) -> str:
    """': no kernel for op X (…); output 'y' depends on none of them: …' where ORT's `reason` says it knows no op of
    the file at `path` (named `shown` in the advice), else ''."""
    if not UNKNOWN_OP.search(reason) or not str(path).endswith(".onnx") or not Path(path).is_file():
        return ""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable file keeps ORT's line as it is
        return ""
    ops = unknown_ops(model)
    if not ops:
        return ""
    named = ", ".join(str(op) for op in ops)
    return f": no kernel for {named}; {_way_out(model, ops, shown)}"


def unknown_ops(model: onnx.ModelProto) -> list[UnknownOp]:
    """Every op of `model` (its subgraphs included) with no schema in ORT at the model's opset, nor a function of
    the model's own, in the order met."""
    known = _known_ops(model)
    found: dict[tuple[str, str], list[str]] = {}
    for node, _ in walk_nodes(model.graph):
        if (_domain(node.domain), node.op_type) not in known:
            found.setdefault((node.domain, node.op_type), []).append(node.name)
    return [UnknownOp(op, domain, len(names), names[0]) for (domain, op), names in found.items()]


def free_outputs(model: onnx.ModelProto, ops: list[UnknownOp]) -> list[str]:
    """The graph outputs none of whose ancestors is a node of `ops` (or holds one in a subgraph)."""
    unknown = {(op.domain, op.op_type) for op in ops}
    producers = _producers(model)

    def depends(tensor: str) -> bool:
        stack, seen = [tensor], set()
        while stack:
            name = stack.pop()
            node = producers.get(name)
            if node is None or id(node) in seen:
                continue
            if _holds(node, unknown):
                return True
            seen.add(id(node))
            stack.extend(_inputs(node))
        return False

    return [out.name for out in model.graph.output if not depends(out.name)]


def _way_out(model: onnx.ModelProto, ops: list[UnknownOp], shown: str | Path) -> str:
    free = free_outputs(model, ops)
    if not free:
        return (
            "every output depends on them, so no part of the model loads without them: give ONNX Runtime kernels for "
            "them (a custom-op library) or re-export the model without those ops"
        )
    inputs = _needed_inputs(model, free)
    names = ", ".join(f"'{name}'" for name in free)
    verb = "depends" if len(free) == 1 else "depend"
    cut = _cut_call(shown, inputs, free)
    loads = "a model cut to them loads" if _cut_loads(model, inputs, free) else "a model cut to them leaves them out"
    return (
        f"output{'s' if len(free) > 1 else ''} {names} {verb} on none of them and {loads}: {cut} (or the exporter's "
        "own option for outputs, such as tf2onnx's --outputs), then optimize that"
    )


def _cut_call(shown: str | Path, inputs: list[str], outputs: list[str]) -> str:
    """The call that writes the cut model; without check_model=False ONNX's checker refuses the whole model for the
    unknown ops of the default domain, the ones tf2onnx writes."""
    source = Path(shown)
    if source.suffix != ".onnx":
        return "onnx.utils.extract_model(…, check_model=False)"
    target = source.with_name(f"{source.stem}_cut.onnx")
    return f"onnx.utils.extract_model('{source}', '{target}', {inputs}, {outputs}, check_model=False)"


def _cut_loads(model: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> bool:
    """Whether ORT loads `model` cut to `outputs` (a model with weights in another file is not tried)."""
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return False
    try:
        import onnxruntime as ort

        cut = onnx.utils.Extractor(model).extract_model(inputs, outputs)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # the cut is ours: its failure only weakens the advice
        ort.InferenceSession(cut.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:  # any failure: the advice claims less
        return False
    return True


def _needed_inputs(model: onnx.ModelProto, outputs: list[str]) -> list[str]:
    """The graph inputs (not initializers) that `outputs` are computed from, in the graph's order."""
    producers = _producers(model)
    reached, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name in reached:
            continue
        reached.add(name)
        node = producers.get(name)
        stack.extend(_inputs(node) if node is not None else [])
    weights = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name in reached and i.name not in weights]


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Each tensor of the main graph with the node that makes it."""
    return {out: node for node in model.graph.node for out in node.output if out}


def _known_ops(model: onnx.ModelProto) -> set[tuple[str, str]]:
    """(domain, op type) of each op ORT has a schema for at the model's opsets, and of the model's functions."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    opsets = {_domain(o.domain): o.version for o in model.opset_import}
    known = {(_domain(f.domain), f.name) for f in model.functions}
    for schema in ort_state.get_all_operator_schema():
        domain = _domain(schema.domain)
        if domain in opsets and schema.since_version <= opsets[domain]:
            known.add((domain, schema.name))
    return known


def _holds(node: onnx.NodeProto, unknown: set[tuple[str, str]]) -> bool:
    return any((n.domain, n.op_type) in unknown for n in _nodes_of(node))


def _inputs(node: onnx.NodeProto) -> list[str]:
    """`node`'s inputs and every name its subgraphs read (outer-scope ones among them: more is safe here)."""
    return [name for n in _nodes_of(node) for name in n.input if name]


def _nodes_of(node: onnx.NodeProto) -> Iterator[onnx.NodeProto]:
    yield node
    for _, body in node_subgraphs(node):
        yield from (inner for inner, _ in walk_nodes(body))


def _domain(domain: str) -> str:
    return "" if domain in ONNX_DOMAINS else domain
