"""A Resize's constant `sizes` with the batch of 1 in it given as the equal `scales`, so it resizes any number of rows.

Models converted from TFLite (tflite2onnx: MediaPipe's palm detector) write RESIZE_BILINEAR as a Resize
to the constant `sizes` [1, C, H, W]: with 2 rows ORT refuses a linear Resize that would shrink the batch,
and a nearest one answers 1 row for 2. `scales` = sizes / input shape say the same resize for one row and
keep the batch for any (a tester's hand-made copy of the palm detector answered bit-identically). Only exact
scales are written (2, 0.5; not 8/3, which ORT would round by its own rule), batch scale 1, from the shape ONNX
infers at the fixed batch of 1; `optimizer.batch_axis` keeps them only where one row still answers as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

from optimizer.batch_advice import constants, static_shapes

SIZES = 3  # Resize's inputs: X, roi, scales, sizes (opset 11 on)


@dataclass(frozen=True)
class ScalesForSizes:
    """The Resize nodes given `scales` for their `sizes`, with their inputs before, to undo it."""

    nodes: list[onnx.NodeProto]
    inputs_before: list[list[str]]

    @property
    def names(self) -> list[str]:
        return [node.name or node.output[0] for node in self.nodes]


def scales_for_sizes(model: onnx.ModelProto) -> ScalesForSizes:
    """Each Resize of `model` (in place; its batch still fixed at 1) whose constant `sizes` start with 1 and over
    its input's inferred shape are exact in float32 now takes those `scales`, its `sizes` empty."""
    known = constants(model)
    found = [(node, _sizes_fixing_batch(node, known)) for node in model.graph.node]
    candidates = [(node, sizes) for node, sizes in found if sizes is not None]
    shapes = (static_shapes(model) if candidates else None) or {}  # inferred only where a Resize needs it
    nodes, before = [], []
    for node, sizes in candidates:
        scales = _exact_scales(sizes, shapes.get(node.input[0], []))
        if scales is None:
            continue
        name = _unused_name(model, f"{node.name or node.output[0]}__scales")
        model.graph.initializer.append(numpy_helper.from_array(scales, name))
        before.append(list(node.input))
        node.input[2], node.input[SIZES] = name, ""  # Resize takes one of scales and sizes
        nodes.append(node)
    return ScalesForSizes(nodes, before)


def undo_scales(model: onnx.ModelProto, done: ScalesForSizes) -> None:
    """`model` with the Resize nodes `done` took back to their `sizes`, and their `scales` removed."""
    added = {node.input[2] for node in done.nodes}
    for node, inputs in zip(done.nodes, done.inputs_before, strict=True):
        del node.input[:]
        node.input.extend(inputs)
    kept = [t for t in model.graph.initializer if t.name not in added]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def drop_unread_sizes(model: onnx.ModelProto, done: ScalesForSizes) -> None:
    """The `sizes` tensors no node reads any more after `done` (initializers, Constant nodes) removed."""
    read = {name for node in model.graph.node for name in node.input}
    listed = {value.name for value in [*model.graph.input, *model.graph.output]}
    unread = {inputs[SIZES] for inputs in done.inputs_before} - read - listed
    initializers = [t for t in model.graph.initializer if t.name not in unread]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    nodes = [n for n in model.graph.node if not (n.op_type == "Constant" and set(n.output) <= unread)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _sizes_fixing_batch(node: onnx.NodeProto, known: dict[str, onnx.TensorProto]) -> np.ndarray | None:
    """The constant `sizes` of a Resize over all axes, starting with the batch of 1; None for any other node."""
    if node.op_type != "Resize" or len(node.input) <= SIZES or node.input[SIZES] not in known:
        return None
    if any(a.name == "axes" for a in node.attribute) or _policy(node) != "stretch":  # sizes apply as given
        return None
    sizes = numpy_helper.to_array(known[node.input[SIZES]])
    return sizes if sizes.ndim == 1 and sizes.size >= 2 and sizes[0] == 1 else None


def _exact_scales(sizes: np.ndarray, dims: list[int]) -> np.ndarray | None:
    """float32 sizes / dims where each is exact in float32 and the batch's is 1; None otherwise (a dim unknown)."""
    if len(dims) != len(sizes) or not all(dims) or dims[0] != 1:
        return None
    ratios = [Fraction(int(size), int(dim)) for size, dim in zip(sizes, dims, strict=True)]
    scales = np.array([float(r) for r in ratios], np.float32)
    exact = all(Fraction(float(s)) == r and r > 0 for s, r in zip(scales, ratios, strict=True))
    return scales if exact else None


def _policy(node: onnx.NodeProto) -> str:
    value = next((a.s for a in node.attribute if a.name == "keep_aspect_ratio_policy"), b"stretch")
    return value.decode()


def _unused_name(model: onnx.ModelProto, name: str) -> str:
    taken = {t.name for t in model.graph.initializer} | {o for n in model.graph.node for o in n.output}
    taken |= {v.name for v in model.graph.input}
    suffix = 0
    while f"{name}{suffix or ''}" in taken:
        suffix += 1
    return f"{name}{suffix or ''}"
