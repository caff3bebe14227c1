"""A model over ONNX's 2 GiB protobuf limit, as large models are published: `model.onnx` + `model.onnx.data`.

An MLP classifier, 1024 → 16384 → 16384 → 16384 → 10 (553 M weights, 2.2 GB in FP32), random He-initialized
weights, and 400 random rows to calibrate and verify on. Written in about a minute; it is how the large-model
path (optimizer.onnx_files) was measured (BENCHMARKS.md, "A model over 2 GiB"):

    python -m examples.large_model /tmp/big
    quantserve optimize /tmp/big/model.onnx --calib /tmp/big/calib.npz --precision int8 --out /tmp/big/build

`--pt2` writes the same shape from PyTorch instead (`model.pt2`: `quantserve optimize /tmp/big/model.pt2
--input-names x …`).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

WIDTHS = (1024, 16384, 16384, 16384, 10)
ROWS = 400


def write_large_mlp(folder: Path, widths: tuple[int, ...] = WIDTHS, seed: int = 0) -> Path:
    """`folder/model.onnx` with its weights in `folder/model.onnx.data`, and `folder/calib.npz`; the model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    nodes, weights, previous = [], [], "x"
    for index, (rows, cols) in enumerate(itertools.pairwise(widths)):
        weight = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(np.sqrt(2.0 / rows))
        weights.append(numpy_helper.from_array(weight, f"W{index}"))
        last = index == len(widths) - 2
        product = "logits" if last else f"m{index}"
        nodes.append(helper.make_node("MatMul", [previous, f"W{index}"], [product], name=f"fc{index}"))
        if not last:
            nodes.append(helper.make_node("Relu", [product], [f"h{index}"], name=f"relu{index}"))
            previous = f"h{index}"
    graph = helper.make_graph(
        nodes,
        "large_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", widths[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", widths[-1]])],
        weights,
    )
    path = folder / "model.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data")
    np.savez(folder / "calib.npz", x=rng.standard_normal((ROWS, widths[0])).astype(np.float32))
    return path


def write_large_pt2(folder: Path, widths: tuple[int, ...] = WIDTHS, seed: int = 0) -> Path:
    """The same shape from PyTorch: `folder/model.pt2` (`torch.export`, dynamic batch, `nn.Linear` layers with
    biases: exported as `Gemm`), and `folder/calib.npz`; the program's path."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for index, (rows, cols) in enumerate(itertools.pairwise(widths)):
        layers += [torch.nn.Linear(rows, cols)] + ([torch.nn.ReLU()] if index < len(widths) - 2 else [])
    example = (torch.randn(2, widths[0]),)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(torch.nn.Sequential(*layers).eval(), example, dynamic_shapes=({0: batch},))
    path = folder / "model.pt2"
    torch.export.save(program, str(path))
    rng = np.random.default_rng(seed)
    np.savez(folder / "calib.npz", x=rng.standard_normal((ROWS, widths[0])).astype(np.float32))
    return path


if __name__ == "__main__":
    folder = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), "build/large"))
    print(write_large_pt2(folder) if "--pt2" in sys.argv else write_large_mlp(folder))
