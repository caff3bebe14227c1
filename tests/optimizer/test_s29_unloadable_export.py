"""A TorchScript export ONNX Runtime cannot load is not the model's fault: the dynamo exporter is tried.

PatchTST (session 29 probe): the TorchScript exporter wrote its positional encoding as an Add of [1, 16, 64] and
[batch, 17, 64], which ORT refuses to load ("Incompatible dimensions"); optimize refused the model with exit 2,
while the dynamo exporter's file of the same module loads and matches it. Here the TorchScript attempt writes such a
file (an Add of incompatible fixed shapes) and the real dynamo exporter runs on a small module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import optimizer.torch_export as torch_export
from quantserve.errors import QuantserveError

FACTORY_MODULE = """
import torch


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.relu(self.proj(x))


def factory():
    torch.manual_seed(0)
    return Small().eval(), {"x": torch.randn(2, 8)}
"""


def _unloadable(source: object, out_path: Path, opset: int) -> None:
    """What the TorchScript exporter wrote for PatchTST, in small: an Add whose fixed shapes cannot broadcast."""
    a = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 17, 64])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 17, 64])
    pe = helper.make_tensor("pe", TensorProto.FLOAT, [1, 16, 64], np.zeros(16 * 64, np.float32).tolist())
    graph = helper.make_graph([helper.make_node("Add", ["x", "pe"], ["output"])], "g", [a], [out], [pe])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(out_path))


@pytest.fixture
def source(tmp_path: Path):
    from optimizer.source import load_source

    (tmp_path / "s29_small_factory.py").write_text(FACTORY_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield load_source("s29_small_factory:factory")
    finally:
        sys.path.remove(str(tmp_path))


def test_an_unloadable_torchscript_file_falls_back_to_dynamo(source, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch_export, "_export_torchscript", _unloadable)
    out = tmp_path / "m.onnx"
    assert torch_export.export_torch(source, out, 17) == "dynamo"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: np.ones((3, 8), np.float32)})[0].shape == (3, 4)


def test_both_failing_is_one_line_naming_both(source, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch_export, "_export_torchscript", _unloadable)

    def dynamo_fails(*_: object) -> None:
        raise RuntimeError(
            "\x1b[96mThis is step 1/3\x1b[0m of exporting\n\n## Exception summary\n\n<class 'X'>: boom\n"
        )

    monkeypatch.setattr(torch_export, "_export_dynamo", dynamo_fails)
    with pytest.raises(QuantserveError) as raised:
        torch_export.export_torch(source, tmp_path / "m.onnx", 17)
    line = str(raised.value)
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith(
        "s29_small_factory: ONNX export failed (torchscript: it wrote a model ONNX Runtime cannot load "
    )
    assert "Incompatible dimensions" in line
    assert line.endswith(
        "; dynamo: <class 'X'>: boom); export it yourself, as a .pt2 from torch.export with its dynamic shapes or "
        "as an .onnx file (README: MODEL)"
    )
