"""Generate the tiny models the optimizer tests run on: a CNN (Conv+BN+ReLU+Linear) as a factory, ONNX and `.pt2`.

Run as a script to write them into a folder: `python tests/assets/make_tiny_models.py OUT_DIR`.
Tests import the functions and build the models into `tmp_path`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SHAPE = (1, 8, 8)  # digits-like: one channel, 8x8 pixels
NUM_CLASSES = 10


def tiny_cnn() -> Any:
    """A small Conv+BN+ReLU stack with a Linear head, weights fixed by seed, BN statistics non-trivial."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, NUM_CLASSES),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def tiny_cnn_factory() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Factory for `MODEL=tests.assets.make_tiny_models:tiny_cnn_factory`: module, named example inputs, options."""
    import torch

    example = {"pixels": torch.randn(2, *INPUT_SHAPE)}
    return tiny_cnn(), example, {"output_names": ["logits"]}


def tiny_cnn_tuple_factory() -> tuple[Any, tuple[Any, ...]]:
    """The same CNN with a positional example input (its input is named `input`)."""
    import torch

    return tiny_cnn(), (torch.randn(2, *INPUT_SHAPE),)


def tiny_sequence_model() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """An embedding + mean-pool classifier whose input has a dynamic `sequence` axis declared by the factory."""
    import torch
    from torch import nn

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.hidden = nn.Linear(16, 16)  # a compute node INT8 can take (the head makes the graph output)
            self.head = nn.Linear(16, 4)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.hidden(self.embed(input_ids).mean(dim=1))))

    torch.manual_seed(0)
    example = {"input_ids": torch.randint(0, 50, (2, 7))}
    options = {"dynamic_axes": {"input_ids": {0: "batch", 1: "sequence"}}, "output_names": ["logits"]}
    return Tokens().eval(), example, options


def write_tiny_onnx(path: Path, batch: int | str = "N") -> Path:
    """Write an unfused ONNX CNN (Conv → BatchNormalization → Relu → pool → Gemm) built with onnx.helper.

    Input `pixels` [batch, 1, 8, 8], output `logits` [batch, 10]; a fixed int `batch` makes the
    model the fuse stage and the batch-axis check must reject or fold.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    channels = 8

    def init(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array.astype(np.float32), name)

    initializers = [
        init("conv_w", rng.normal(0, 0.5, (channels, 1, 3, 3))),
        init("bn_scale", rng.uniform(0.5, 1.5, channels)),
        init("bn_bias", rng.uniform(-0.2, 0.2, channels)),
        init("bn_mean", rng.uniform(-0.5, 0.5, channels)),
        init("bn_var", rng.uniform(0.5, 1.5, channels)),
        init("fc_w", rng.normal(0, 0.3, (NUM_CLASSES, channels))),
        init("fc_b", rng.normal(0, 0.1, NUM_CLASSES)),
    ]
    nodes = [
        helper.make_node("Conv", ["pixels", "conv_w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch, *INPUT_SHAPE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, NUM_CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def write_tiny_pt2(path: Path) -> Path:
    """Save the tiny CNN as a `torch.export` program at `path`, with a dynamic batch axis."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(tiny_cnn(), (torch.randn(2, *INPUT_SHAPE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return Path(path)


def write_digits_like_npz(path: Path, samples: int = 64, input_name: str = "pixels", seed: int = 0) -> Path:
    """Random digits-like pixels in [0, 16) with labels, saved as a quantserve `.npz`."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 16, size=(samples, *INPUT_SHAPE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=samples).astype(np.int64)
    np.savez(path, **{input_name: pixels, "labels": labels})
    return Path(path)


def write_legacy_onnx(path: Path, opset: int = 12) -> Path:
    """The tiny CNN as an older exporter writes it: opset `opset` (< 13) and the batch axis marked -1."""
    import onnx

    write_tiny_onnx(path, batch=-1)
    model = onnx.load(str(path))
    del model.opset_import[:]
    model.opset_import.append(onnx.helper.make_opsetid("", opset))
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def write_unconvertible_onnx(path: Path) -> Path:
    """An opset-5 model ONNX's version converter cannot upgrade: Dropout in training mode (is_test=0)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["pixels"], ["relu"], name="relu"),
        helper.make_node("Dropout", ["relu"], ["logits"], name="train_dropout", is_test=0),
    ]
    shape = ["N", 4]
    graph = helper.make_graph(
        nodes,
        "unconvertible",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 5)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def write_heavy_tail_mlp(path: Path, features: int = 16, hidden: int = 32) -> Path:
    """`x[batch, features]` → MatMul → Relu → MatMul → `y[batch, 4]`: fed heavy-tailed data, the hidden
    activation has rare huge values, where minmax, entropy and percentile ranges part ways."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.5, (features, hidden)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (hidden, 4)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["hidden"], name="fc1"),
        helper.make_node("Relu", ["hidden"], ["act"], name="relu"),
        helper.make_node("MatMul", ["act", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "heavy_tail_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def write_heavy_tail_npz(path: Path, samples: int = 256, features: int = 16, seed: int = 0) -> Path:
    """Student-t (2 degrees of freedom) inputs for `write_heavy_tail_mlp`: mostly small, a few huge."""
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.standard_t(2.0, size=(samples, features)).astype(np.float32))
    return Path(path)


def write_wide_conv_onnx(path: Path, channels: int = 16, size: int = 64, layers: int = 3) -> Path:
    """A Conv+Relu stack on `pixels[batch, 1, size, size]` whose activations are large per sample
    (channels * size² floats each, about 2 MB a sample at the defaults): calibration memory shows."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    nodes, initializers, previous, width = [], [], "pixels", 1
    for i in range(layers):
        weight = rng.normal(0, 1 / np.sqrt(9 * width), (channels, width, 3, 3)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weight, f"conv{i}_w"))
        nodes.append(
            helper.make_node("Conv", [previous, f"conv{i}_w"], [f"conv{i}"], pads=[1, 1, 1, 1], name=f"conv{i}")
        )
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        previous, width = f"relu{i}", channels
    nodes.append(helper.make_node("GlobalAveragePool", [previous], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten"))
    graph = helper.make_graph(
        nodes,
        "wide_conv",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", channels])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def write_wide_conv_npz(path: Path, samples: int, size: int = 64, seed: int = 0) -> Path:
    """Uniform pixels for `write_wide_conv_onnx`."""
    rng = np.random.default_rng(seed)
    np.savez(path, pixels=rng.uniform(0, 1, size=(samples, 1, size, size)).astype(np.float32))
    return Path(path)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    print(write_tiny_onnx(out / "tiny_cnn.onnx"))
    print(write_tiny_pt2(out / "tiny_cnn.pt2"))
    print(write_digits_like_npz(out / "calib.npz"))
