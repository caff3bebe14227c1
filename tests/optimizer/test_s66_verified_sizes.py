"""A model that takes any size past the batch, verified at one size: said once, in optimize's notes, the build's
record and deploy (session 66).

Probe 66D: esrgan-medium's ×2 upscaler takes [N, H, W, 3] with H and W dynamic; its INT8 build was verified on 64×64
crops alone (PSNR to FP32 46.26 dB, budget 45), served as dims [-1, -1, 3], and single images at 48×80 read 43.97 dB
and at 200×300 44.63 dB. optimize said nothing of the sizes it had verified.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.verified_sizes import VERIFIED_SIZES
from optimizer.verify import VerifyAgainstReference
from quantserve.cli import main
from quantserve.data import TensorData
from serving import endpoints

Dims = list[int | str]


def _conv(path: Path, shape: Dims, nudge: float = 0.0, layers: int = 1) -> Path:
    """x `shape` (N, 3, H, W) → y: `layers` Conv 3×3 (same padding) to 4 channels, Relu between them; `nudge` moves
    the weights (a candidate unlike it)."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 3 if i == 0 else 4, 3, 3)).astype(np.float32) * 0.3 + nudge for i in range(layers)]
    names = ["x", *(f"h{i}" for i in range(2 * layers - 2)), "y"]
    nodes = []
    for i in range(layers):
        source, target = names[2 * i], names[2 * i + 1]
        nodes.append(helper.make_node("Conv", [source, f"w{i}"], [target], pads=[1, 1, 1, 1]))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [target], [names[2 * i + 2]]))
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], 4, *shape[2:]])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _images(rows: int = 8, size: tuple[int, int] = (16, 12)) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, size=(rows, 3, *size)).astype(np.float32)


def _record(tmp_path: Path, shape: Dims, data: TensorData) -> dict:
    reference = _conv(tmp_path / "fp32.onnx", shape)
    candidate = _conv(tmp_path / "int8.onnx", shape, nudge=1e-4)
    return VerifyAgainstReference(reference, data, "held.npz", 8).measure(candidate)


def test_dynamic_height_and_width_verified_at_one_size_are_said_once(tmp_path: Path) -> None:
    record = _record(tmp_path, ["N", 3, "H", "W"], TensorData({"x": _images()}))
    note = (
        "verified at input 'x' H×W 16×12 only: the model declares any size there (served as -1), and the build's drift "
        "can differ at other sizes; verify at the sizes you serve (pass --eval with a .npz of each size, or "
        "`quantserve evaluate` the deployed model on data of them)"
    )
    assert record["notes"].count(note) == 1, record["notes"]
    assert record[VERIFIED_SIZES] == {
        "inputs": [{"input": "x", "axes": [2, 3], "names": ["H", "W"], "sizes": [16, 12]}],
        "note": note,
    }


@pytest.mark.parametrize("name", ["", "unk__512"])  # tf2onnx names esrgan's H and W unk__512, unk__513
def test_unnamed_dynamic_axes_are_named_by_number(tmp_path: Path, name: str) -> None:
    record = _record(tmp_path, ["N", 3, name, name and "unk__513"], TensorData({"x": _images()}))
    assert record[VERIFIED_SIZES]["note"].startswith("verified at input 'x' axes 2, 3 at 16×12 only: ")


def test_fixed_height_and_width_say_nothing(tmp_path: Path) -> None:
    record = _record(tmp_path, ["N", 3, 16, 12], TensorData({"x": _images()}))
    assert VERIFIED_SIZES not in record
    assert not any("verified at" in note for note in record["notes"]), record["notes"]


def test_an_fp32_build_judged_by_itself_says_nothing(tmp_path: Path) -> None:
    reference = _conv(tmp_path / "fp32.onnx", ["N", 3, "H", "W"])
    record = VerifyAgainstReference(reference, TensorData({"x": _images()}), "held.npz", 8).measure(reference)
    assert VERIFIED_SIZES not in record


def _tagger(path: Path, nudge: float = 0.0) -> Path:
    """ids (N, T) int64 and lengths (N,) → scores (N, T, 4): an embedding table looked up per token."""
    table = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32) + nudge
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["gathered"]),
            helper.make_node("Cast", ["lengths"], ["lengths_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["lengths_f", "axes"], ["lengths_col"]),
            helper.make_node("Unsqueeze", ["lengths_col", "axes2"], ["lengths_3d"]),
            helper.make_node("Mul", ["gathered", "lengths_3d"], ["scores"]),
        ],
        "tagger",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "T"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "T", 4])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array([2], np.int64), "axes2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_sequence_axis_a_length_input_marks_says_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 11, size=16).astype(np.int64)
    ids = np.zeros((16, 10), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, 50, size=length)
    data = TensorData({"input_ids": ids, "lengths": lengths})
    reference, candidate = _tagger(tmp_path / "fp32.onnx"), _tagger(tmp_path / "int8.onnx", nudge=1e-4)
    record = VerifyAgainstReference(reference, data, "held.npz", 8).measure(candidate)
    assert VERIFIED_SIZES not in record
    assert not any("verified at" in note for note in record["notes"]), record["notes"]


def test_optimize_notes_it_records_it_and_deploy_repeats_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _conv(tmp_path / "conv.onnx", ["N", 3, "H", "W"], layers=3)
    np.savez(tmp_path / "calib.npz", x=_images(32))
    np.savez(tmp_path / "held.npz", x=np.random.default_rng(4).uniform(0, 1, size=(24, 3, 20, 24)).astype(np.float32))
    build = tmp_path / "build"
    optimize = ["optimize", str(model), "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "held.npz")]
    flags = ["--out", str(build), "--skip-timing", "--keep-failing", "--allow-thin-evidence", "--max-search-s", "60"]
    assert main([*optimize, *flags]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "verified at input 'x'" in line]
    assert len(said) == 1 and said[0].startswith("quantserve: note: verified at input 'x' H×W 20×24 only: "), said
    recorded = json.loads((build / "manifest.json").read_text())["verification"]
    assert recorded[VERIFIED_SIZES]["inputs"] == [
        {"input": "x", "axes": [2, 3], "names": ["H", "W"], "sizes": [20, 24]}
    ]
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))  # no serve of this repository runs
    os.makedirs(tmp_path / "run")
    assert main(["deploy", str(build), "--repo", str(tmp_path / "repo"), "--name", "conv"]) == 0
    err = capsys.readouterr().err
    assert f"note: {build}: {recorded[VERIFIED_SIZES]['note']}" in err, err
