"""A batch axis fixed at 1 that optimize makes dynamic is said on the terminal (session 62, MEGnet with batch 1).

`optimizer.batch_axis` proves such a file batchable and names axis 0 `batch`; deploy then writes max_batch_size 32.
That change of the served interface was recorded only in manifest.json (the export stage's
`batch_axis_made_dynamic`): optimize printed nothing of it. It is one note line now, as the other changes made to
the served model's inputs and outputs are (a ZipMap removed, an input with a default folded in)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve import cli


def _projection(path: Path, batch: int | str) -> Path:
    """y = x·W, (batch, 4) -> (batch, 3)."""
    weights = numpy_helper.from_array(np.random.default_rng(62).normal(0, 1, (4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "projection",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _optimize(model: Path, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    rows = tmp_path / "heldout.npz"
    np.savez(rows, x=np.random.default_rng(4).normal(0, 1, (40, 4)).astype(np.float32))
    out = tmp_path / f"build_{model.stem}"
    assert cli.main(["optimize", str(model), "--precision", "fp32", "--eval", str(rows), "--out", str(out)]) == 0
    return dict(json.loads((out / "manifest.json").read_text()))


def test_a_fixed_batch_made_dynamic_is_one_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _optimize(_projection(tmp_path / "fixed.onnx", 1), tmp_path)
    assert manifest["stages"][0]["batch_axis_made_dynamic"]["was"] == 1
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "batch axis" in line]
    assert notes == [
        "quantserve: note: input 'x' had its batch axis fixed at 1; made dynamic, as Triton batches requests only "
        "along a dynamic axis 0: 2 rows at once equal 2 single-row runs on every output"
    ], err


def test_a_dynamic_batch_gets_no_such_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _optimize(_projection(tmp_path / "dynamic.onnx", "N"), tmp_path)
    assert "batch axis" not in capsys.readouterr().err
