"""Unusual ONNX files end in one clear line or a recorded decision, never a traceback.

Each graph is built here with onnx.helper (skl2onnx is not a dependency): an input with a default,
a ZipMap output, a string label output, a custom-domain op, an output whose axis 1 follows the
batch, and an INT8 scheme that fails to build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer import int8_schemes
from optimizer.batch_axis import checking_session, unbatched_output
from optimizer.drift_budget import BudgetExceeded
from optimizer.export import manifest_from_onnx
from optimizer.fuse import FuseGraph, check_inputs_kept
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from quantserve.runner import concat_outputs

# a budget these searches never reach: at load average 14 a 30 s one ran out and overwrote the skipped scheme's
# reason with the time-out's (the budget itself is tested in test_search_budget); VNNI flags: no 7-bit fallback
FAST = SearchSettings(max_search_s=600.0, max_probes=4, probe_samples=32, timing_repeats=1)
VNNI = frozenset({"avx2", "avx512_vnni"})
OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: list = (), opsets: list = OPSETS) -> Path:  # type: ignore[assignment]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)), opset_imports=opsets)
    onnx.save(model, str(path))
    return path


def _x(features: int = 4) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])


def _weight(name: str, rows: int, cols: int, seed: int = 0) -> onnx.TensorProto:
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32), name)


def _calib(path: Path, rows: int = 64, features: int = 4) -> Path:
    np.savez(path, x=np.random.default_rng(1).standard_normal((rows, features)).astype(np.float32))
    return path


def _optimize(source: Path, tmp_path: Path, precision: str = "fp32") -> Artifact:
    calib = _calib(tmp_path / "calib.npz")
    options = OptimizeOptions(
        source, calib, precision, "embedded", tmp_path / "out", speed=SpeedSettings(enabled=False)
    )
    return optimize(options)


# --- 1. an input with a default (an initializer of the same name) is folded, and said so ---


def test_an_input_with_a_default_is_folded_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    temperature = numpy_helper.from_array(np.array(2.0, np.float32), "temperature")
    path = _save(
        tmp_path / "optional.onnx",
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Div", ["h", "temperature"], ["y"])],
        [_x(), helper.make_tensor_value_info("temperature", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [_weight("w", 4, 3), temperature],
    )
    from quantserve.artifact import Manifest
    from quantserve.cli import main

    argv = ["optimize", str(path), "--calib", str(_calib(tmp_path / "calib.npz")), "--precision", "fp32"]
    assert main([*argv, "--skip-timing", "--out", str(tmp_path / "out")]) == 0
    note = (
        "input 'temperature' has a default (an initializer of the same name) and is folded into the model as that "
        "constant; the served model takes only x"
    )
    assert f"quantserve: note: {note}" in capsys.readouterr().err
    export, fuse = Manifest.load(tmp_path / "out").stages[:2]
    assert export["inputs_folded"] == {"inputs": ["temperature"], "note": note}
    assert fuse["defaults_folded"] == ["temperature"]
    assert [i.name for i in onnx.load(str(tmp_path / "out" / "fp32.onnx")).graph.input] == ["x"]


def test_fusion_that_drops_a_real_input_is_refused() -> None:
    assert check_inputs_kept(["x", "t"], ["t"], ["x"]) == ["t"]
    with pytest.raises(QuantserveError, match=r"fusion changed the model's inputs \(dropped \['mask'\]"):
        check_inputs_kept(["x", "mask"], [], ["x"])


# --- 2. non-tensor inputs and outputs are refused by name (a ZipMap writing an output is removed) ---


def _zipmap_model() -> onnx.ModelProto:
    seq_of_maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    )
    nodes = [helper.make_node("ZipMap", ["x"], ["output_probability"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])]
    graph = helper.make_graph(nodes, "g", [_x(2)], [helper.make_value_info("output_probability", seq_of_maps)])
    return helper.make_model(graph, opset_imports=OPSETS)


def test_a_zipmap_output_left_in_the_graph_is_refused_in_one_line() -> None:
    """Loading removes a ZipMap writing an output (`optimizer.zipmap`, tests/optimizer/test_zipmap.py); one that
    reaches the manifest is refused naming the way out."""
    with pytest.raises(QuantserveError) as caught:
        manifest_from_onnx(_zipmap_model(), "zipmap")
    assert str(caught.value) == (
        "output 'output_probability' is a sequence of maps (as ZipMap writes), which Triton cannot serve; optimize "
        "removes a ZipMap only where it writes a graph output itself: make the tensor the ZipMap reads the output "
        "(its class probabilities, [N, C])"
    )


def test_a_sequence_input_is_refused_by_name() -> None:
    sequence = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["frames", "i"], ["y"])],
        "g",
        [helper.make_value_info("frames", sequence)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0, np.int64), "i")],
    )
    with pytest.raises(QuantserveError, match=r"^input 'frames' is a sequence, which Triton cannot serve"):
        manifest_from_onnx(helper.make_model(graph, opset_imports=OPSETS), "seq")


# --- 3. string label outputs are compared by equality ---


def _string_labels(path: Path) -> Path:
    """x → MatMul → ArgMax → Gather from a constant of class names: a string label per row, beside the scores."""
    names = helper.make_tensor("names", TensorProto.STRING, [3], [b"emu", b"gnu", b"yak"])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["scores"]),
        helper.make_node("ArgMax", ["scores"], ["index"], axis=1, keepdims=0),
        helper.make_node("Constant", [], ["classes"], value=names),
        helper.make_node("Gather", ["classes", "index"], ["label"]),
    ]
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.STRING, ["N"]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3]),
    ]
    return _save(path, nodes, [_x()], outputs, [_weight("w", 4, 3)])


def test_a_string_output_is_compared_by_equality_in_the_fuse_check(tmp_path: Path) -> None:
    path = _string_labels(tmp_path / "labels.onnx")
    artifact = Artifact(path, manifest_from_onnx(onnx.load(str(path)), "labels"))
    assert artifact.manifest.outputs[0].dtype == "object"
    feeds = {"x": np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)}
    fused = FuseGraph(feeds)(artifact, tmp_path / "fused.onnx")
    assert fused.manifest.stages[-1]["max_abs_diff"] < 1e-4


def test_a_model_with_a_string_output_builds_and_verifies_in_fp32(tmp_path: Path) -> None:
    """Past the fuse check, verification compared the string labels with np.allclose and the abs differences
    cast them to float: a traceback."""
    artifact = _optimize(_string_labels(tmp_path / "labels.onnx"), tmp_path)
    verification = artifact.manifest.extra.get("verification") or {}
    assert artifact.path.is_file() and verification.get("holds", True) is not False, verification


# --- 4. a model ONNX Runtime cannot load is said so, in one line ---


def test_a_custom_domain_op_is_refused_as_unloadable(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "custom.onnx",
        [helper.make_node("MySoftplus", ["x"], ["y"], domain="com.example")],
        [_x()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        opsets=[*OPSETS, helper.make_opsetid("com.example", 1)],
    )
    with pytest.raises(QuantserveError) as caught:
        _optimize(path, tmp_path)
    assert str(caught.value) == (
        f"{path}: ONNX Runtime cannot load it: no kernel for op MySoftplus (domain 'com.example', 1 node); every "
        "output depends on them, so no part of the model loads without them: give ONNX Runtime kernels for them (a "
        "custom-op library) or re-export the model without those ops"
    )


# --- 5. an output whose other axes follow the number of rows ---


def _rows_by_rows(path: Path) -> Path:
    """y = x · xᵀ: N × N, like CLIP's logits_per_image (images × texts)."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"]), helper.make_node("MatMul", ["x", "xt"], ["y"])]
    return _save(path, nodes, [_x()], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "N"])])


def test_an_output_whose_axis_1_follows_the_rows_is_refused_up_front(tmp_path: Path) -> None:
    path = _rows_by_rows(tmp_path / "pairs.onnx")
    feeds = {"x": np.ones((8, 4), np.float32)}
    with pytest.raises(QuantserveError) as caught:
        unbatched_output(checking_session(path, "clip"), feeds, "clip")
    assert str(caught.value) == (
        "clip: output 'y' has shape [8, 8] for 8 input rows and [1, 1] for 1 input row: an axis other than 0 "
        "changes with the rows run together (their number, or their content: a decoder's length is its longest "
        "row's), so Triton's dynamic batching cannot split it per request; build it with --unbatched (Triton then "
        "serves it with max_batch_size 0, one request at a time, that axis -1); where its size follows the values, "
        "each request's answer is judged against FP32's for the same request (INT8's changed lengths against "
        "--min-sequence-agreement)"
    )


def test_concat_outputs_names_an_output_whose_batches_disagree_beyond_axis_0() -> None:
    parts = [{"y": np.zeros((4, 4))}, {"y": np.zeros((2, 2))}]
    with pytest.raises(
        QuantserveError, match=r"^output 'y' cannot be joined along the batch axis: .*\[4, 4\], \[2, 2\]"
    ):
        concat_outputs(parts)


# --- 6. one INT8 scheme failing to build does not end the search ---


def _mlp(path: Path) -> Artifact:
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2"),
    ]
    _save(
        path,
        nodes,
        [_x(16)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32])],
        [_weight("w1", 16, 64, 3), _weight("w2", 64, 32, 4)],
    )
    return Artifact(path, manifest_from_onnx(onnx.load(str(path)), "mlp"))


def _fail(self: object, fused: Artifact, excluded: object, out: Path) -> Path:
    raise QuantserveError(f"{fused.path.name}: {type(self).__name__} failed (RuntimeError: Unable to find data type)")


def test_a_scheme_that_fails_to_build_is_dropped_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int8_schemes.DynamicScheme, "build", _fail)
    data = TensorData({"x": np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)})
    record = SearchInt8(data, data, search=FAST, allow_thin_evidence=True, keep_failing=True, cpu_flags=VNNI)(
        _mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx"
    ).manifest.stages[-1]
    schemes = [c["scheme"] for c in record["candidates"]]
    assert "dynamic" not in schemes and "static_qdq" in schemes
    assert (
        record["skipped"]["dynamic"]
        == "failed to build: mlp.onnx: DynamicScheme failed (RuntimeError: Unable to find data type)"
    )


def test_every_scheme_failing_is_a_refusal_with_the_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for scheme in (int8_schemes.StaticScheme, int8_schemes.DynamicScheme, int8_schemes.SmoothStaticScheme):
        monkeypatch.setattr(scheme, "build", _fail)
    data = TensorData({"x": np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)})
    with pytest.raises(BudgetExceeded, match=r"^no INT8 scheme could be built \(static_qdq: .*dynamic: ") as caught:
        SearchInt8(data, data, search=FAST, allow_thin_evidence=True, cpu_flags=VNNI)(
            _mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx"
        )
    assert caught.value.exit_code == 1
