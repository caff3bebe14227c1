r"""A sequence model served with mixed request lengths: the load test's per-length figures, re-measured.

Writes OUT/build (a 3-layer 1-D conv over x (N, T, 16), masked mean pooled by `mask` (N, T) into (N, 32)), deploys it
into OUT/repo as `seq` (max batch 8, Triton's ragged batching, each request cut to its real length), and writes
OUT/mixed.npz (264 rows of 32 real steps beside 248 of 1024, shuffled) and OUT/short.npz (the 32-step rows alone):

    python -m examples.mixed_lengths --out reports/lengths
    quantserve serve --repo reports/lengths/repo &
    quantserve loadtest --model seq --data reports/lengths/mixed.npz --users 8 --duration 20s \
        --out reports/lengths/mixed
    quantserve loadtest --model seq --data reports/lengths/short.npz --users 8 --duration 20s \
        --out reports/lengths/short
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from serving.deploy import deploy

WIDTH, SHORT, LONG = 1024, 32, 1024
CHANNELS = 64


def seq_model(seed: int = 0) -> onnx.ModelProto:
    """The conv stack: x (batch, T, 16) float, mask (batch, T) int64 → y (batch, 32), the masked mean over T."""
    rng = np.random.default_rng(seed)
    weights = {
        "w1": (rng.normal(size=(CHANNELS, 16, 5)) / 9).astype(np.float32),
        "w2": (rng.normal(size=(CHANNELS, CHANNELS, 5)) / 18).astype(np.float32),
        "w3": (rng.normal(size=(32, CHANNELS, 5)) / 18).astype(np.float32),
    }
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "w1"], ["c1"], pads=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], pads=[2, 2]),
        helper.make_node("Cast", ["mask"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "one"], ["mu"]),
        helper.make_node("Mul", ["c3", "mu"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "two"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["mf", "one"], ["n"], keepdims=1),
        helper.make_node("Div", ["s", "n"], ["y"]),
    ]
    initializers = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    initializers += [
        numpy_helper.from_array(np.array([axis], np.int64), name) for name, axis in (("one", 1), ("two", 2))
    ]
    graph = helper.make_graph(
        nodes,
        "seq",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "T", 16]),
            helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "T"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def write(out: Path, seed: int = 0) -> None:
    """The build, its deployment and the two data files under `out`."""
    build = out / "build"
    build.mkdir(parents=True, exist_ok=True)
    onnx.save(seq_model(seed), str(build / "model.onnx"))
    inputs = [TensorSpec("x", "float32", ("batch", "T", 16)), TensorSpec("mask", "int64", ("batch", "T"))]
    outputs = [TensorSpec("y", "float32", ("batch", 32))]
    Manifest("seq", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(build)
    deploy(build, out / "repo", "seq", max_batch=8, ragged_batching="group")
    rng = np.random.default_rng(seed)
    lengths = rng.permutation(np.array([SHORT] * 264 + [LONG] * 248))
    mask = (np.arange(WIDTH)[None, :] < lengths[:, None]).astype(np.int64)
    x = rng.normal(size=(len(lengths), WIDTH, 16)).astype(np.float32) * mask[:, :, None].astype(np.float32)
    TensorData({"x": x, "mask": mask}).save(out / "mixed.npz")
    short = lengths == SHORT
    TensorData({"x": x[short], "mask": mask[short]}).save(out / "short.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the build, repository and data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.out, args.seed)
    print(f"wrote {args.out}/build, {args.out}/repo (model 'seq'), {args.out}/mixed.npz, {args.out}/short.npz")


if __name__ == "__main__":
    main()
