"""A classifier's answer made in its graph: the same ONNX model with an ArgMax (a class id per sample) or a TopK (its
K best classes and their scores) after its class-score output, as exporters that bake post-processing in leave it.

    python -m examples.in_graph_answers MODEL.onnx --out DIR [--k 5]

writes DIR/argmax.onnx (output `class_id` only), DIR/both.onnx (the scores and `class_id`) and DIR/topk.onnx
(`top_scores` and `top_ids` only), for `quantserve optimize` on the same data as the original (BENCHMARKS.md, "A
classifier's answer made in its graph").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def with_answer(model: onnx.ModelProto, kind: str, k: int) -> onnx.ModelProto:
    """`model` (its first output: class scores, (batch, classes)) with its answer added as `kind`: argmax, both
    (scores and ArgMax) or topk."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    scores = graph.output[0]
    batch = scores.type.tensor_type.shape.dim[0]
    rows = batch.dim_param or batch.dim_value or "batch"
    keep = [scores] if kind == "both" else []
    if kind in ("argmax", "both"):
        graph.node.append(helper.make_node("ArgMax", [scores.name], ["class_id"], axis=-1, keepdims=0))
        answers = [helper.make_tensor_value_info("class_id", TensorProto.INT64, [rows])]
    else:
        graph.initializer.append(helper.make_tensor("top_k", TensorProto.INT64, [1], [k]))
        graph.node.append(helper.make_node("TopK", [scores.name, "top_k"], ["top_scores", "top_ids"], axis=-1))
        answers = [
            helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, [rows, k]),
            helper.make_tensor_value_info("top_ids", TensorProto.INT64, [rows, k]),
        ]
    del graph.output[:]
    graph.output.extend([*keep, *answers])
    onnx.checker.check_model(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="ONNX classifier whose first output is its class scores")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--k", type=int, default=5, help="TopK's K")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(args.model))
    for kind in ("argmax", "both", "topk"):
        onnx.save(with_answer(model, kind, args.k), str(args.out / f"{kind}.onnx"))
        print(args.out / f"{kind}.onnx")


if __name__ == "__main__":
    main()
