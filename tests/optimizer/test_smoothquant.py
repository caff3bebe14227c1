"""SmoothQuant as a graph rewrite: outputs kept, outliers evened out, LN folded or a Mul inserted, INT8 helped.

The model is generated here with onnx.helper: LayerNormalization → Q/K/V MatMuls sharing its output,
a MatMul fed by a Mul (not foldable), a Gemm with transB=1; a few activation channels 50× the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.export import manifest_from_onnx
from optimizer.smoothquant import smooth_quant
from optimizer.transformer import run_model
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

HIDDEN, SEQ, OUTLIERS = 32, 8, (3, 11, 20)


def outlier_model() -> onnx.ModelProto:
    """x[N,8,32] → LN (γ 50× on 3 channels) → q/k/v; z[N,32] × channel gains → MatMul and Gemm(transB)."""
    rng = np.random.default_rng(0)
    gains = np.ones(HIDDEN, np.float32)
    gains[list(OUTLIERS)] = 50.0

    def weight(name: str, shape: tuple[int, int]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(HIDDEN)).astype(np.float32), name)

    inits = [
        numpy_helper.from_array(gains, "gamma"),
        numpy_helper.from_array((rng.standard_normal(HIDDEN) * 0.1).astype(np.float32), "beta"),
        numpy_helper.from_array(gains * 0.5, "gains"),
        *(weight(w, (HIDDEN, HIDDEN)) for w in ("wq", "wk", "wv", "wm")),
        weight("wg", (16, HIDDEN)),  # Gemm transB=1: [out, in]
        numpy_helper.from_array(np.zeros(16, np.float32), "bg"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], name="ln", axis=-1),
        *(helper.make_node("MatMul", ["ln", f"w{p}"], [p], name=f"proj_{p}") for p in "qkv"),
        helper.make_node("Add", ["q", "k"], ["qk"], name="add_qk"),
        helper.make_node("Add", ["qk", "v"], ["y"], name="add_v"),
        helper.make_node("Mul", ["z", "gains"], ["h"], name="gain"),
        helper.make_node("MatMul", ["h", "wm"], ["m"], name="proj_m"),
        helper.make_node("Relu", ["m"], ["mr"], name="relu_m"),
        helper.make_node("Gemm", ["h", "wg", "bg"], ["g"], name="gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "outliers",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SEQ, HIDDEN]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", HIDDEN]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", SEQ, HIDDEN]),
            helper.make_tensor_value_info("mr", TensorProto.FLOAT, ["N", HIDDEN]),
            helper.make_tensor_value_info("g", TensorProto.FLOAT, ["N", 16]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def samples(count: int, seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    return TensorData(
        {
            "x": rng.standard_normal((count, SEQ, HIDDEN)).astype(np.float32),
            "z": rng.standard_normal((count, HIDDEN)).astype(np.float32),
        }
    )


def _save(model: onnx.ModelProto, path: Path) -> Artifact:
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


@pytest.fixture(scope="module")
def smoothed() -> tuple[onnx.ModelProto, onnx.ModelProto, dict]:
    model = outlier_model()
    result, record = smooth_quant(model, samples(64, 1).batches(16), alpha=0.5)
    return model, result, record.to_dict()


def test_smoothed_outputs_equal_the_original(smoothed, tmp_path: Path) -> None:
    model, result, _ = smoothed
    feeds = samples(32, 2).arrays
    want = run_model(_save(model, tmp_path / "a.onnx").path, feeds)
    got = run_model(_save(result, tmp_path / "b.onnx").path, feeds)
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= 1e-4 * np.abs(value).max(), name


def test_outlier_ratio_drops_and_every_weight_node_is_smoothed(smoothed) -> None:
    _, _, record = smoothed
    assert record["alpha"] == 0.5 and record["groups"] == 2
    assert sorted(record["smoothed"]) == ["gemm", "proj_k", "proj_m", "proj_q", "proj_v"]
    assert record["outlier_ratio_before"] > 20.0, record
    assert record["outlier_ratio_after"] < record["outlier_ratio_before"] / 4, record


def test_layernorm_folded_and_a_mul_inserted_before_the_unfoldable_group(smoothed) -> None:
    model, result, record = smoothed
    assert record["folded_into_layernorm"] == 1 and record["mul_inserted"] == 1
    ln = next(n for n in result.graph.node if n.name == "ln")
    assert list(ln.input[1:]) != ["gamma", "beta"]  # the LN now carries γ/s and β/s
    (mul,) = [n for n in result.graph.node if n.name in record["inserted_nodes"]]
    assert mul.op_type == "Mul" and mul.input[0] == "h"
    readers = {n.name for n in result.graph.node if mul.output[0] in n.input}
    assert readers == {"proj_m", "gemm"}
    assert len(result.graph.node) == len(model.graph.node) + 1
    assert {o.name for o in result.graph.output} == {o.name for o in model.graph.output}


def test_static_int8_of_the_smoothed_model_drifts_less(smoothed, tmp_path: Path) -> None:
    model, result, _ = smoothed
    calib, held = samples(64, 1), samples(64, 3)
    settings = CalibrationSettings(op_types_to_quantize=("MatMul", "Gemm"))
    errors = []
    for tag, proto in (("plain", model), ("smooth", result)):
        art = _save(proto, tmp_path / f"{tag}.onnx")
        int8 = CalibrateInt8(calib, settings)(art, tmp_path / f"{tag}-int8.onnx")
        want, got = run_model(tmp_path / "plain.onnx", held.arrays), run_model(int8.path, held.arrays)
        errors.append(max(np.abs(got[k] - want[k]).mean() / np.abs(want[k]).mean() for k in want))
    print("relative error plain, smoothed:", errors)
    assert errors[1] < errors[0] * 0.7, errors


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5])
def test_alpha_outside_zero_one_is_refused(alpha: float) -> None:
    with pytest.raises(QuantserveError, match=rf"SmoothQuant alpha {alpha} must be in \(0, 1\]"):
        smooth_quant(outlier_model(), samples(4, 0).batches(4), alpha=alpha)


def test_no_calibration_batches_is_refused() -> None:
    with pytest.raises(QuantserveError, match="SmoothQuant needs calibration batches; none were given"):
        smooth_quant(outlier_model(), iter([]))


def test_a_layernorm_output_that_is_a_graph_output_is_never_folded(tmp_path: Path) -> None:
    model = outlier_model()
    model.graph.output.append(helper.make_tensor_value_info("ln", TensorProto.FLOAT, ["N", SEQ, HIDDEN]))
    result, record = smooth_quant(model, samples(16, 1).batches(8))
    assert record.folded_into_layernorm == 0 and record.mul_inserted == 2
    feeds = samples(8, 2).arrays
    want = run_model(_save(model, tmp_path / "a.onnx").path, feeds)["ln"]
    assert np.array_equal(run_model(_save(result, tmp_path / "b.onnx").path, feeds)["ln"], want)


def test_maxima_taken_once_give_the_same_smoothing_for_every_alpha() -> None:
    """The search tries several alphas on one model: the activation pass is alpha-free and taken once."""
    from optimizer.smoothquant import smoothing_maxima

    model, data = outlier_model(), samples(32, 3)
    maxima = smoothing_maxima(model, data.batches(8))
    for alpha in (0.5, 0.8):
        direct, _ = smooth_quant(model, data.batches(8), alpha=alpha)
        reused, _ = smooth_quant(model, (), alpha=alpha, maxima=maxima)
        assert direct.SerializeToString() == reused.SerializeToString()
    assert smoothing_maxima(onnx.ModelProto(), ()) == {}  # nothing to smooth: no pass, no batches needed
