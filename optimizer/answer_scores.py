"""The scores behind an answer made in the graph: the float tensor an ArgMax or a TopK reads to give a class id per
sample, found in the graph and run as an extra output of a copy, so the INT8 search can rank its probes by how far
those scores moved (their relative error), as it would the same network's logits given raw.

An id per sample moves one probe row at a time: on 32 probe rows a first-id agreement of 0.97 or 1.0 is one row
either way, and the search ranked CREPE's TopK(5) export by those single rows. It kept FP32 the 69 ms conv2 and was
refused at 1.05× (session 50), while keeping the classifier, conv3 and conv4 held (first-id agreement 0.9926 on 272
held-out rows), the set its scores export shipped at 2.93×. Ranked by the relative error of the sigmoid scores the
TopK reads (conv3 alone: 0.0165 → 0.0144 on the probe rows, while it changed one probe row's id the wrong way), the
search reaches that set. The ids are still what is judged: the scores only order the probes.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import onnx

from optimizer import onnx_files

# ops that carry an answer unchanged in value: an ArgMax's ids cast to int32, squeezed, reshaped
_CARRIERS = frozenset({"Cast", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Identity"})
# above this many bytes of scores over the probe rows, no guide is run (a per-pixel ArgMax's logits: its ids are many
# per sample, so their agreement is a fine figure already, and its scores would not fit beside the outputs)
MAX_SCORE_BYTES = 64 * 2**20


def answer_scores(model: onnx.ModelProto, outputs: Collection[str]) -> dict[str, str]:
    """For each of `outputs` an ArgMax/ArgMin (or a TopK's indices) makes, through ops that only cast or reshape it:
    the float tensor that node reads, by output name."""
    producer = {name: node for node in model.graph.node for name in node.output}
    found = {}
    for output in outputs:
        tensor, node = output, producer.get(output)
        while node is not None and node.op_type in _CARRIERS and node.input:
            tensor, node = node.input[0], producer.get(node.input[0])
        if node is None or not node.input:
            continue
        if node.op_type in ("ArgMax", "ArgMin") or (node.op_type == "TopK" and tensor == node.output[1]):
            found[output] = node.input[0]
    return found


def with_scores(path: Path, outputs: Collection[str], out: Path) -> tuple[Path, dict[str, str]] | None:
    """The model at `path` with the scores behind `outputs` among its graph outputs, and which output of it holds
    the scores behind which of `outputs`: `path` itself where they are outputs already (an export giving both its
    scores and their ArgMax), else a copy written at `out` (beside `path`: a large model's weights file is shared)
    with them added. None where none of `outputs` is an answer made from scores in this graph."""
    model = onnx.load(str(path), load_external_data=False)
    scores = answer_scores(model, outputs)
    if not scores:
        return None
    graph_outputs = {o.name for o in model.graph.output}
    extra = [tensor for tensor in dict.fromkeys(scores.values()) if tensor not in graph_outputs]
    if not extra:
        return path, scores
    for tensor in extra:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    if onnx_files.is_large(model) or any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
    ):  # weights left in their file, found beside `out` as beside `path`
        onnx.save(model, str(out))
    else:
        onnx_files.save(model, out)
    return out, scores
