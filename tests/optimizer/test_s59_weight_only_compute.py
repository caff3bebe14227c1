"""Static Q/DQ of the weight-bearing compute nodes alone (session 59): swift-f0's pitch estimator computes its STFT as
MatMuls of the signal against a computed Sin/Cos basis, then a Conv stack. INT8 of those activation×activation MatMuls
broke it (one per-tensor scale on the raw signal), Conv alone in INT8 held, and the search never tried that: the
mixed-precision search starts from one candidate and keeps groups of compute nodes FP32 on it, so from static Q/DQ of
every op type the Q/DQ between the nodes stays, and a group lumping the MatMuls with the Convs keeps them all."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import quantized_nodes
from optimizer.drift_checks import Violation
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_refusal_words import where_drift_is
from optimizer.int8_schemes import ALONE_KEY, PRODUCTS_KEY, activation_products
from optimizer.int8_search import SearchInt8
from quantserve.artifact import Artifact
from quantserve.data import TensorData

FRAME, BINS, FRAMES = 32, 16, 8
# one probe group: the mixed-precision search can only keep every compute node FP32 at once
LUMPED = SearchSettings(max_search_s=600.0, max_probes=1, probe_samples=32, timing_repeats=1)


def stft_conv(path: Path, computed_basis: bool = True) -> Artifact:
    """x [N, frames, samples] → MatMul by a Sin/Cos basis (computed from a phase table, or constant as onnxslim
    leaves swift-f0's) → log power → Conv → Conv."""
    rng = np.random.default_rng(0)
    t, k = np.arange(FRAME)[:, None], np.arange(1, BINS + 1)[None, :]
    phase = (2 * np.pi * t * k / FRAME).astype(np.float32)
    inits = [
        numpy_helper.from_array(phase, "phase"),
        numpy_helper.from_array(np.array([1e-10], np.float32), "eps"),
        numpy_helper.from_array((rng.standard_normal((16, BINS, 3)) * 0.2).astype(np.float32), "c1.w"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "c1.b"),
        numpy_helper.from_array((rng.standard_normal((8, 16, 3)) * 0.2).astype(np.float32), "c2.w"),
    ]
    bases = [
        helper.make_node("Sin", ["phase"], ["sin_basis"], name="sin_basis"),
        helper.make_node("Cos", ["phase"], ["cos_basis"], name="cos_basis"),
    ]
    if not computed_basis:
        inits += [
            numpy_helper.from_array(np.sin(phase), "sin_basis"),
            numpy_helper.from_array(np.cos(phase), "cos_basis"),
        ]
        bases = []
    nodes = [
        *bases,
        helper.make_node("MatMul", ["x", "sin_basis"], ["im"], name="dft_im"),
        helper.make_node("MatMul", ["x", "cos_basis"], ["re"], name="dft_re"),
        helper.make_node("Mul", ["im", "im"], ["im2"], name="im_sq"),
        helper.make_node("Mul", ["re", "re"], ["re2"], name="re_sq"),
        helper.make_node("Add", ["im2", "re2"], ["power"], name="power"),
        helper.make_node("Add", ["power", "eps"], ["power_eps"], name="power_eps"),
        helper.make_node("Log", ["power_eps"], ["logspec"], name="log"),
        helper.make_node("Transpose", ["logspec"], ["spec"], name="to_channels", perm=[0, 2, 1]),
        helper.make_node("Conv", ["spec", "c1.w", "c1.b"], ["c1"], name="conv1", pads=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2.w"], ["y"], name="conv2", pads=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "stft_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", FRAMES, FRAME])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, FRAMES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def clips(n: int, seed: int) -> TensorData:
    """Tones in noise at gains from −60 to 0 dB: one per-tensor scale on the raw signal loses the quiet ones."""
    rng = np.random.default_rng(seed)
    t = np.arange(FRAMES * FRAME)
    freq, gain = rng.uniform(1, 12, (n, 1)) / FRAME, 10 ** rng.uniform(-3, 0, (n, 1))
    tone = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6, (n, 1))) + 0.05 * rng.standard_normal((n, t.size))
    return TensorData({"x": (gain * tone).reshape(n, FRAMES, FRAME).astype(np.float32)})


def test_the_products_without_a_constant_weight_are_found_through_casts(tmp_path: Path) -> None:
    model = onnx.load(str(stft_conv(tmp_path / "m.onnx").path))
    assert activation_products(model) == ["dft_im", "dft_re"]
    model.graph.node.insert(0, helper.make_node("Cast", ["phase"], ["phase_f"], name="cast", to=TensorProto.FLOAT))
    model.graph.node[1].input[0] = "phase_f"  # a basis computed from a cast constant is still computed
    assert activation_products(model) == ["dft_im", "dft_re"]
    im = next(n for n in model.graph.node if n.name == "dft_im")
    im.input[:] = [
        "phase",
        "x",
    ]  # a constant basis by the signal (swift-f0's folded STFT): the signal takes a weight's place
    re = next(n for n in model.graph.node if n.name == "dft_re")
    re.input[:] = ["x", "phase_f"]  # the signal by a cast constant: a weight ONNX Runtime quantizes per channel
    assert activation_products(model) == ["dft_im"]


def _searched(tmp_path: Path, computed_basis: bool) -> tuple[dict, list[str]]:
    art = stft_conv(tmp_path / "m.onnx", computed_basis)
    search = SearchInt8(clips(64, 1), clips(200, 2), target="embedded", search=LUMPED, output_kinds={"y": "dense"})
    record = search(art, tmp_path / "int8.onnx").manifest.stages[-1]  # before: refused, "it holds only with every
    # compute node FP32": the mix started from static_qdq_compute, and one probe group held every node
    int8 = quantized_nodes(onnx.load(str(art.path)), onnx.load(str(tmp_path / "int8.onnx")))
    by_scheme = {c["scheme"]: c for c in record["candidates"]}
    assert not by_scheme["static_qdq"]["holds"] and not by_scheme["static_qdq_compute"]["holds"], by_scheme
    assert "conv1" in int8 and not {"dft_im", "dft_re"} & set(int8), int8
    return record, list(by_scheme)


def test_the_compute_nodes_of_a_constant_weight_alone_are_tried_where_the_compute_ops_miss(tmp_path: Path) -> None:
    record, schemes = _searched(tmp_path, computed_basis=True)
    assert record["scheme"] == "static_qdq_weighted" and record["within_budget"], schemes
    assert record[PRODUCTS_KEY] == ["dft_im", "dft_re"]
    assert {"dft_im", "dft_re"} <= set(record["kept_fp32"]), record["kept_fp32"]


def test_each_compute_op_type_alone_is_tried_where_every_one_has_a_weight(tmp_path: Path) -> None:
    record, schemes = _searched(tmp_path, computed_basis=False)
    # MatMul first (the most multiply-adds): it misses, and Conv alone holds
    assert schemes == ["static_qdq", "static_qdq_compute", "static_qdq_matmul_only", "static_qdq_conv_only"], schemes
    assert record["scheme"] == "static_qdq_conv_only" and record["within_budget"], schemes
    assert record[ALONE_KEY] == "Conv"


def _missed(scheme: str, value: float, record: dict) -> SimpleNamespace:
    drift = SimpleNamespace(violations=[Violation("y", "channel_correlation_worst", value, 0.98)], outputs={})
    return SimpleNamespace(scheme=scheme, drift=drift, record=record)


def test_a_refusal_names_the_narrower_compute_sets_missing_too() -> None:
    tried = [
        _missed("static_qdq", 0.5, {}),
        _missed("static_qdq_compute", 0.7, {}),
        _missed("static_qdq_weighted", 0.9, {PRODUCTS_KEY: ["a", "b"]}),
        _missed("static_qdq_conv_only", 0.95, {ALONE_KEY: "Conv"}),
    ]
    line = where_drift_is(tried)  # type: ignore[arg-type]
    assert line.endswith(
        "static_qdq_compute, which quantizes them alone, misses it (output 'y': worst channel correlation 0.7 < "
        "budget 0.98), and so do static_qdq_weighted (2 compute nodes of no constant weight FP32: output 'y': worst "
        "channel correlation 0.9 < budget 0.98), static_qdq_conv_only (Conv alone in INT8: output 'y': worst channel "
        "correlation 0.95 < budget 0.98)"
    ), line
