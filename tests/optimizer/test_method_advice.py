"""The advice after an INT8 drift refusal: clipping calibration only where calibration saw outliers, and one wording
for "every compute node kept FP32 and still missed"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_int8_search import FAST, outlier_images, outlier_input_convs

from optimizer.activation_outliers import OUTLIER_RATIO, activation_outliers
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import Violation
from optimizer.int8_search import SearchInt8, _SearchRun


def _conv(path: Path) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["y"], name="act")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 16, 16])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return model


def test_outliers_are_told_from_plain_activations(tmp_path: Path) -> None:
    model = _conv(tmp_path / "conv.onnx")
    rng = np.random.default_rng(1)
    plain = rng.normal(size=(16, 3, 16, 16)).astype(np.float32)
    spiked = plain.copy()
    spiked[::4, 0, 0, 0] = 200.0  # one value in 3 072 far beyond the rest: a min/max scale spans it
    calm = activation_outliers(model, tmp_path / "conv.onnx", [{"x": plain}])
    assert calm is not None and calm.ratio < OUTLIER_RATIO and "clips outliers" not in calm.method_hint()
    assert calm.method_hint().endswith("is unlikely to hold it: deploy fp32")
    loud = activation_outliers(model, tmp_path / "conv.onnx", [{"x": spiked}])
    assert loud is not None and loud.seen and loud.tensor == "x"
    assert loud.method_hint().startswith("--method percentile or --method entropy clips outliers ('x' peaks at ")


def test_a_refusal_without_outliers_does_not_advise_clipping(tmp_path: Path) -> None:
    """Channels of 100 beside channels of 1e-3: a per-tensor scale loses the small ones, and no clip helps."""
    art = outlier_input_convs(tmp_path / "convs.onnx")
    search = SearchInt8(outlier_images(64, 1), outlier_images(48, 2), target="embedded", search=FAST)
    with pytest.raises(BudgetExceeded) as refused:
        search(art, tmp_path / "int8.onnx")
    record = refused.value.record
    assert record["activation_outliers"]["seen"] is False, record["activation_outliers"]
    assert "clips outliers" not in record["method_hint"] and "deploy fp32" in record["method_hint"]


def _missing(value: float) -> SimpleNamespace:
    violation = Violation("Identity", "channel_correlation_worst", value, 0.98)
    return SimpleNamespace(
        holds=False, violations=[violation], outputs={}, margin=lambda: value - 0.98, advice=[], user_metric=None
    )


def test_every_compute_node_fp32_still_missing_is_not_said_to_hold() -> None:
    """MediaPipe's palm detector under percentile calibration: the all-FP32 variant missed too (0.88), and the line
    said "it holds only with every compute node FP32"."""
    closest = SimpleNamespace(scheme="static_qdq_compute", drift=_missing(0.2172), summary=dict, speedup=1.5)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[], _quantizes_anything=bool)
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._nothing_in_int8(run, [closest], {"result": {"holds": False}})  # type: ignore[arg-type]
    assert str(refused.value) == (
        "no INT8 model holds the drift budget: with its compute nodes in INT8, static_qdq_compute misses it (output "
        "'Identity': worst channel correlation 0.2172 < budget 0.98), and still missed it with every compute node "
        "kept FP32 in turn: the drift is in the quantized data movement between them, and in the compute nodes too "
        "(static_qdq_compute quantizes them alone); nothing written: deploy fp32 (or pass --keep-failing to ship the "
        "closest INT8 model)"
    )
    with pytest.raises(BudgetExceeded, match=r"\); it holds only with every compute node FP32; nothing written"):
        _SearchRun._nothing_in_int8(run, [closest], {"result": {"holds": True}})  # type: ignore[arg-type]


def test_optimize_prints_the_measured_advice_where_the_refusal_carries_it() -> None:
    """The min/max refusal's last words: the search's measured advice where it has one (palm ended with "clips
    outliers and may hold it" although it had none, and percentile refused again), the general advice elsewhere."""
    from types import SimpleNamespace

    from optimizer.drift_budget import BudgetExceeded
    from quantserve.cli.optimize_refusal import with_method_hint

    options = SimpleNamespace(precision="int8", method="minmax")
    measured = "calibration saw no outliers to clip (worst: 'x' peaks at 4.2× its 99.9th percentile), so … deploy fp32"
    carried = with_method_hint(
        BudgetExceeded("INT8 misses", {"refused_for": "drift", "method_hint": measured}), options
    )
    assert str(carried) == f"INT8 misses; calibrated with --method minmax: {measured}"
    general = with_method_hint(BudgetExceeded("INT8 misses", {"refused_for": "drift"}), options)
    assert str(general).endswith("--method percentile or --method entropy clips outliers and may hold it")


def test_all_fp32_holding_says_when_groups_were_not_tried_back_in_int8() -> None:
    """basic-pitch (session 51): told "it holds only with every compute node FP32" where the search's time ran out
    before it tried the kept groups back in INT8; a search that tried them all found a mix holding at 6.5 % of MACs."""
    closest = SimpleNamespace(scheme="static_qdq_compute", drift=_missing(0.2172), summary=dict, speedup=1.5)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[], _quantizes_anything=bool)
    steps = [{"holds": False}] * 3 + [{"holds": True}]
    cut = {"result": {"holds": True}, "steps": steps, "returned_to_int8": [{"holds": False}], "stopped": "budget holds"}
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._nothing_in_int8(run, [closest], cut)  # type: ignore[arg-type]
    assert (
        "; it holds only with every compute node FP32 as far as the search went: it kept 4 groups FP32 one at a time "
        "before the budget held, then the mixed-precision search's time ran out after trying 1 of the first 3 back in "
        "INT8; a mix with some of them in INT8 may hold it; nothing written: give the search time with --max-search-s "
        "600"
    ) in str(refused.value)
    done = {**cut, "returned_to_int8": [{"holds": False}] * 3}
    with pytest.raises(BudgetExceeded, match=r"\); it holds only with every compute node FP32; nothing written"):
        _SearchRun._nothing_in_int8(run, [closest], done)  # type: ignore[arg-type]
