"""A ZipMap that writes a graph output is removed: the output keeps its name and becomes ZipMap's input tensor.

ZipMap (ai.onnx.ml) turns a float [N, C] tensor of class probabilities into a sequence of maps, one
{class label: probability} per row, which Triton cannot serve (it takes and returns dense tensors only).
CatBoost 1.2.10's `save_model(format="onnx")` writes its `probabilities` output through one, with no option
to leave it out; skl2onnx does too unless converted with `zipmap=False`. The tensor ZipMap reads holds the same
probabilities, classes along axis 1 in the order of its `classlabels_int64s`/`classlabels_strings`: measured on
a CatBoost 4-class model, the served tensor equals `predict_proba` exactly. The class labels are recorded,
since the tensor's columns no longer name them. A ZipMap anywhere else (not writing a graph output itself)
is left in place; a non-tensor output it leads to is refused in one line by the export stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import onnx

from optimizer.graph_walk import subgraph_reads

ZIPMAP = "ZipMap"


@dataclass(frozen=True)
class RemovedZipMap:
    """A graph output that was a ZipMap's sequence of maps and is now its [N, C] float tensor."""

    output: str
    classes: list[int] | list[str]  # axis 1's order

    def note(self) -> str:
        """The line saying what the output became, e.g. "output 'probabilities': ZipMap removed, …"."""
        shown = ", ".join(str(c) for c in self.classes[:10]) + (", …" if len(self.classes) > 10 else "")
        return (
            f"output '{self.output}': ZipMap removed, a [N, {len(self.classes)}] float tensor now, "
            f"classes {shown} in that order"
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def zipmaps_record(removed: list[RemovedZipMap]) -> dict[str, object]:
    """The export stage's `zipmaps_removed` entry: each output and its classes, and the note to print."""
    return {"outputs": [r.to_dict() for r in removed], "note": "; ".join(r.note() for r in removed)}


def remove_output_zipmaps(model: onnx.ModelProto) -> list[RemovedZipMap]:
    """Remove, in place, every ZipMap whose output is a graph output; that output becomes the ZipMap's input
    tensor under the output's name (float, [N, C]). Returns what was removed (empty: nothing changed)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    removed = []
    for node in [n for n in graph.node if n.op_type == ZIPMAP and n.output[0] in outputs]:
        classes = _classes(node)
        graph.node.remove(node)
        _expose(model, node.input[0], node.output[0], len(classes))
        removed.append(RemovedZipMap(node.output[0], classes))
    return removed


def _classes(node: onnx.NodeProto) -> list[int] | list[str]:
    """The ZipMap's class labels (its map keys), in the order of the tensor's axis 1."""
    attributes = {a.name: a for a in node.attribute}
    if "classlabels_strings" in attributes:
        return [s.decode("utf-8", "replace") for s in attributes["classlabels_strings"].strings]
    return [int(i) for i in attributes["classlabels_int64s"].ints] if "classlabels_int64s" in attributes else []


def _expose(model: onnx.ModelProto, tensor: str, output: str, classes: int) -> None:
    """Make `tensor` the graph output `output`: its producer writes it under that name (every reader renamed), or
    an Identity copies it where it is a graph input, output or initializer, or no top-level node writes it."""
    graph = model.graph
    interface = {v.name for v in [*graph.input, *graph.output]} | {i.name for i in graph.initializer}
    producers = {name for node in graph.node for name in node.output}
    if tensor in interface or tensor not in producers or tensor in subgraph_reads(graph.node):
        graph.node.append(onnx.helper.make_node("Identity", [tensor], [output], name=f"{output}_zipmap_removed"))
    else:
        for node in graph.node:
            node.input[:] = [output if name == tensor else name for name in node.input]
            node.output[:] = [output if name == tensor else name for name in node.output]
    for value in [v for v in graph.value_info if v.name in (tensor, output)]:
        graph.value_info.remove(value)
    value = next(v for v in graph.output if v.name == output)
    value.type.CopyFrom(onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, [None, classes or None]))
