"""Recurrent state: pairs found by name and shape (or named with --state), and a stateful model verified also as
one stream fed its own state. The model: state' = 0.998·state + W·x, prob = softmax(V·state'), x slowly varying.
Row by row (each row fed FP32's state) INT8 held top-1 agreement 0.997-1.0 over 600 rows under every scheme the
search chose (seeds 0-3); fed its own state, INT8's rounding errors pile up over the ~500-step memory and
agreement fell to 0.33-0.87, as silero-vad's fell to 0.85 over a 90 s stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.state_loop import StatePair, find_state_pairs, names_pair, parse_state_flags
from quantserve.cli import main
from quantserve.errors import QuantserveError

D, H, C = 16, 32, 4


def _save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The accumulating model, and calibration and held-out rows of one FP32 stream (each row's state FP32's)."""
    folder = tmp_path_factory.mktemp("stateful")
    rng = np.random.default_rng(0)
    a = np.eye(H) * 0.998
    w, v = rng.standard_normal((D, H)) * 0.3, rng.standard_normal((H, C))
    nodes = [
        helper.make_node("MatMul", ["state", "A"], ["carried"]),
        helper.make_node("MatMul", ["x", "W"], ["fresh"]),
        helper.make_node("Add", ["carried", "fresh"], ["stateN"]),
        helper.make_node("MatMul", ["stateN", "V"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=-1),
    ]
    ins, outs = [("x", ["N", D]), ("state", ["N", H])], [("prob", ["N", C]), ("stateN", ["N", H])]
    model = _save(folder / "acc.onnx", nodes, ins, outs, {"A": a, "W": w, "V": v})
    warm, steps = 1500, 2700
    noise, x = rng.standard_normal((steps, D)), np.zeros((steps, D))
    for t in range(1, steps):  # slowly varying input: INT8's rounding errors stay alike from step to step
        x[t] = 0.99 * x[t - 1] + np.sqrt(1 - 0.99**2) * noise[t]
    state, states = np.zeros(H), []
    for t in range(steps):
        states.append(state)
        state = state @ a + x[t] @ w
    x32, s32 = x.astype(np.float32), np.array(states, np.float32)
    calib, held_out = folder / "calib.npz", folder / "eval.npz"
    np.savez(calib, x=x32[warm : warm + 600], state=s32[warm : warm + 600])
    np.savez(held_out, x=x32[warm + 600 :], state=s32[warm + 600 :])
    return model, calib, held_out


def _optimize(model: Path, calib: Path, held_out: Path, out: Path, *flags: str) -> int:
    argv = ["optimize", str(model), "--calib", str(calib), "--eval", str(held_out), "--out", str(out)]
    return main([*argv, "--skip-timing", *flags])


@pytest.mark.parametrize(
    ("output", "input_name", "paired"),
    [
        ("stateN", "state", True),
        ("stateN_b", "state_b", True),
        ("hn", "h", True),
        ("hn", "h0", True),
        ("cn", "c", True),
        ("state_out", "state_in", True),
        ("present", "past", True),
        ("present.0.key", "past_key_values.0.key", True),
        ("output", "input", False),
        ("out", "in", False),
        ("y", "x", False),
        ("logits", "state", False),
    ],
)
def test_state_names_pair(output: str, input_name: str, paired: bool) -> None:
    assert names_pair(output, input_name) is paired


def test_state_pairs_are_found_by_name_and_shape_or_named(stateful: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model = stateful[0]
    assert find_state_pairs(model) == [StatePair("stateN", "state")]
    assert find_state_pairs(model, {}) == []  # --state none
    assert find_state_pairs(model, {"stateN": "state"}) == [StatePair("stateN", "state")]
    with pytest.raises(QuantserveError, match="no output 'hn'"):
        find_state_pairs(model, {"hn": "state"})
    with pytest.raises(QuantserveError, match="not of the input's type and shape"):
        find_state_pairs(model, {"prob": "state"})
    # no name pairs: the only output shaped like an input, beside other inputs and other outputs, is taken; a model's
    # only output (a refiner's) is not state, nor is an output alone beside its one input
    add = [helper.make_node("Add", ["a", "b"], ["y"])]
    two = _save(tmp_path / "two.onnx", add, [("a", ["N", 8]), ("b", ["N", 8])], [("y", ["N", 8])], {})
    assert find_state_pairs(two) == []  # y matches both inputs: no single pair
    mix = [helper.make_node("MatMul", ["a", "M"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    only = _save(
        tmp_path / "only.onnx", mix, [("a", ["N", 4]), ("b", ["N", 8])], [("y", ["N", 8])], {"M": np.ones((4, 8))}
    )
    assert find_state_pairs(only) == []  # y = a·M + b, its only output: a refiner, not a step of a stream
    relu = [helper.make_node("Relu", ["a"], ["y"])]
    denoiser = _save(tmp_path / "one.onnx", relu, [("a", ["N", 8])], [("y", ["N", 8])], {})
    assert find_state_pairs(denoiser) == []


def test_state_flags_parse() -> None:
    assert parse_state_flags(None) is None
    assert parse_state_flags(["none"]) == {}
    assert parse_state_flags(["hn=h", "cn=c"]) == {"hn": "h", "cn": "c"}
    for bad in (["hn"], ["=h"], ["none", "hn=h"]):
        with pytest.raises(QuantserveError, match="--state"):
            parse_state_flags(bad)


def test_int8_that_drifts_fed_its_own_state_is_refused_in_one_line(
    stateful: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "acc"
    assert _optimize(*stateful, out, "--json") == 1
    captured = capsys.readouterr()
    line = captured.err.strip()
    assert line.count("\n") == 0, line
    assert line.startswith(
        "quantserve: error: INT8 holds row by row but not fed its own state: over 600 consecutive rows, output 'prob'"
    )
    assert "'stateN' fed back as 'state'" in line and "nothing written: deploy fp32" in line
    document = json.loads(captured.out)
    verification = document["verification"]
    assert document["refused_for"] == "drift" and not verification["violations"]  # row by row, it held
    assert verification["closed_loop"]["holds"] is False
    assert not out.exists()


def test_keep_failing_ships_it_with_the_closed_loop_recorded(stateful: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "acc"
    assert _optimize(*stateful, out, "--keep-failing") == 0
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    loop = verification["closed_loop"]
    assert verification["holds"] is False and verification["enforced"] is False
    assert loop["pairs"] == [{"output": "stateN", "input": "state"}] and loop["rows"] == 600
    assert loop["judged_outputs"] == ["prob"] and loop["violations"][0]["output"] == "prob"
    assert loop["outputs"]["prob"]["top1_agreement"] < 0.99 <= verification["outputs"]["prob"]["top1_agreement"]
    assert 0 < loop["state"]["stateN"]["cosine_worst"] < 1


def test_state_none_judges_row_by_row_only(stateful: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "acc"
    assert _optimize(*stateful, out, "--state", "none") == 0
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    assert verification["holds"] is True and "closed_loop" not in verification


def test_a_model_without_state_is_verified_as_before(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    assert find_state_pairs(tiny_onnx) == []
    out = tmp_path / "tiny"
    assert main(["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--skip-timing"]) == 0
    assert "closed_loop" not in json.loads((out / "manifest.json").read_text())["verification"]
