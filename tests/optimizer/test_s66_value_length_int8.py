"""INT8 of a model whose answer length follows its values (a table/OCR decoder: y [1, T, 8], T its steps to EOS) was
refused before calibrating ("build it with --precision fp32 --unbatched"). It is now judged request by request, as
evaluate judges such served answers: over the held-out requests, the share whose answer keeps FP32's shape must meet
--min-sequence-agreement (0.98), and the requests of FP32's shape the cosine budget; else one line, nothing written.

The models are built here: y = Slice(Reshape(MatMul(Relu(MatMul(x, W1)), W2), [-1, 32, 8]), axis 1, end=T), T from
the input's values (kept by INT8) or from the MatMul's (moved by INT8's rounding: many lengths change).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest
from quantserve.cli import main


def _decoder(path: Path, data: Path, from_matmul: bool) -> tuple[Path, Path]:
    """y [N, T, 8]: T = clip(int(max(x)) + 1, 1, 8) from the input, or (int(max(z) * 997) mod 8) + 1 from the MatMul's
    answer z, which INT8 moves; 64 rows whose maxima give lengths 1-8."""
    rng = np.random.default_rng(0)
    consts = {
        "w1": (rng.standard_normal((64, 256)) / 8).astype(np.float32),
        "w2": (rng.standard_normal((256, 256)) / 16).astype(np.float32),
        "shape": np.array([-1, 32, 8], np.int64),
        "one": np.array(1, np.int64),
        "eight": np.array(8, np.int64),
        "ax0": np.array([0], np.int64),
        "zero": np.array([0], np.int64),
        "ax1": np.array([1], np.int64),
        "scale": np.array(997.0, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["z"]),
        helper.make_node("Reshape", ["z", "shape"], ["z3"]),
    ]
    if from_matmul:
        nodes += [
            helper.make_node("ReduceMax", ["z"], ["m"], keepdims=0),
            helper.make_node("Mul", ["m", "scale"], ["ms"]),
            helper.make_node("Cast", ["ms"], ["mi"], to=TensorProto.INT64),
            helper.make_node("Mod", ["mi", "eight"], ["mm"]),
            helper.make_node("Add", ["mm", "one"], ["n"]),
        ]
    else:
        nodes += [
            helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
            helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
            helper.make_node("Add", ["mi", "one"], ["m1"]),
            helper.make_node("Clip", ["m1", "one", "eight"], ["n"]),
        ]
    nodes += [
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Slice", ["z3", "zero", "n1", "ax1"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T", 8])
    inits = [numpy_helper.from_array(value, name) for name, value in consts.items()]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    x = rng.random((64, 64)).astype(np.float32) * 0.9  # maxima in [0.x, 0.9): ...
    x[:, 0] = np.arange(64) % 8 + 0.5  # ... each row's max k + 0.5 (k = 0..7), far from int's rounding: T = k + 1
    np.savez(data, x=x)
    return path, data


def _optimize(tmp_path: Path, from_matmul: bool, *flags: str) -> list[str]:
    model, data = _decoder(tmp_path / "dec.onnx", tmp_path / "d.npz", from_matmul)
    out = str(tmp_path / "b")
    return ["optimize", str(model), "--calib", str(data), "--out", out, "--precision", "int8", "--unbatched", *flags]


def test_int8_of_a_value_length_decoder_builds_judged_per_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_optimize(tmp_path, False, "--allow-slower")) == 0, capsys.readouterr().err
    manifest = Manifest.load(tmp_path / "b")
    assert manifest.precision == "int8"
    [y] = manifest.outputs
    assert isinstance(y.shape[1], str), y  # served dynamic: deploy writes -1
    record = manifest.verification
    assert record["holds"] is True, record
    output = record["outputs"]["y"]
    assert output["kind"] == "per request" and output["requests_same_shape"] == 1.0, output
    assert output["cosine_worst"] >= 0.97 and output["cosine_mean"] >= 0.99, output
    assert record["samples"] == 12, record  # every held-out request, each answered alone
    assert any("per request" in note and "--min-sequence-agreement" in note for note in record["notes"]), record
    assert any("INT8 search did not run" in note for note in record["notes"]), record["notes"]  # the one candidate
    assert "speed" in record, record  # the speed gate ran (its figure recorded; --allow-slower: no timing assert)


def test_int8_that_changes_many_lengths_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_optimize(tmp_path, True, "--allow-slower")) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "output 'y'" in err, err
    assert "of 12 requests changed length, request " in err, err  # k of n, the first named
    assert "< budget 0.98" in err and "--min-sequence-agreement" in err, err
    assert "nothing written" in err, err
    assert not (tmp_path / "b").exists()


def test_the_length_budget_is_the_sequence_agreement_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--min-sequence-agreement 0 lets every length change through: the cosine of the equal-shaped ones decides."""
    assert main(_optimize(tmp_path, True, "--allow-slower", "--min-sequence-agreement", "0")) == 0, capsys.readouterr()
    output = Manifest.load(tmp_path / "b").verification["outputs"]["y"]
    assert output["requests_same_shape"] < 0.98, output


def test_the_requests_of_fp32s_length_are_judged_by_cosine_mean_and_worst() -> None:
    """Every request keeps FP32's length, one's values flipped: the cosine budget refuses it, the line names it."""
    from optimizer.drift_budget import DriftBudget
    from optimizer.verify import drift_refusal
    from optimizer.verify_per_request import _changed, _output_record, _violations

    rng = np.random.default_rng(1)
    expected = [{"y": rng.random((1, n, 8)).astype(np.float32) + 0.1} for n in (1, 3, 5, 8)]
    got = [{"y": answer["y"] * (-1 if i == 2 else 1)} for i, answer in enumerate(expected)]
    record = _output_record("y", expected, got, [1])
    assert record["requests_same_shape"] == 1.0 and record["cosine_worst"] < 0 < record["cosine_mean"] < 0.99
    violations = _violations("y", record, DriftBudget(), Path("int8.onnx"), _changed("y", expected, got))
    assert [v.metric for v in violations] == ["cosine_mean", "cosine_worst"], violations
    line = drift_refusal({"outputs": {"y": record}, "violations": [v.to_dict() for v in violations]})
    assert line.startswith("INT8 misses the drift budget: output 'y' (per request): cosine mean "), line
    assert "< budget 0.99" in line and "worst cosine" in line, line
