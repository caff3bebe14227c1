"""Dynamic INT8 with 7-bit weights as a search fallback on x86 CPUs without VNNI (issue 9).

Dynamic INT8 runs ONNX Runtime's u8 × s8 kernels too, and saturates on AVX2 without VNNI: on test_int8_search's MLP
(AVX2-only EPYC) cosine to FP32 worst 0.9715 with 8-bit weights, 0.9994 with 7-bit. The CPU's flags are injected
(`SearchInt8(cpu_flags=…)`) and the budget is one every candidate misses on any CPU, so what is tried does not depend
on the machine running the tests; nothing asserts timing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from test_int8_search import mlp
from test_reduce_range import AVX2_ONLY, AVX512_VNNI, QUICK, STRICT

from optimizer.calibrate import CalibrationSettings
from optimizer.drift_budget import DriftBudget
from optimizer.int8_fallbacks import FallbackSchemes
from optimizer.int8_measure import SearchSettings
from optimizer.int8_schemes import SEVEN_BIT_WHY, DynamicScheme, SevenBitDynamicScheme, SevenBitStaticScheme
from optimizer.int8_search import SearchInt8
from quantserve.data import TensorData


def rows(count: int, seed: int) -> TensorData:
    return TensorData({"x": np.random.default_rng(seed).standard_normal((count, 16)).astype(np.float32)})


def int8_weights(path: Path) -> np.ndarray:
    model = onnx.load(str(path))
    arrays = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8]
    return np.concatenate([a.ravel() for a in arrays])


def test_seven_bit_dynamic_scheme_quantizes_every_weight_to_seven_bits_and_says_why(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    eight = DynamicScheme().build(art, [], tmp_path / "8.onnx")
    scheme = SevenBitDynamicScheme()
    seven = scheme.build(art, [], tmp_path / "7.onnx")
    assert np.abs(int8_weights(eight)).max() == 127  # per-channel symmetric: each channel's largest weight at ±127
    assert np.abs(int8_weights(seven)).max() <= 64  # 7 bits
    assert scheme.records[seven]["reduce_range"] is True and scheme.records[seven]["reduce_range_why"] == SEVEN_BIT_WHY
    assert "reduce_range_why" not in DynamicScheme().records.get(eight, {})


@pytest.mark.parametrize(("flags", "tried"), [(AVX2_ONLY, True), (AVX512_VNNI, False)])
def test_search_tries_seven_bit_dynamic_weights_only_where_dynamic_missed_on_a_cpu_without_vnni(
    tmp_path: Path, flags: frozenset[str], tried: bool
) -> None:
    search = SearchInt8(rows(128, 1), rows(96, 2), budget=STRICT, search=QUICK, keep_failing=True, cpu_flags=flags)
    record = search(mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    by_scheme = {c["scheme"]: c for c in record["candidates"]}
    assert not by_scheme["dynamic"]["holds"], "8-bit dynamic INT8 must miss (the premise)"
    assert (SevenBitDynamicScheme.name in by_scheme) == tried, record["candidates"]
    if tried:  # built, measured for drift and timed beside FP32 like any candidate
        seven = by_scheme[SevenBitDynamicScheme.name]
        assert seven["margin"] < 0 and seven["run_ms"] > 0 and seven["speedup"] > 0, seven
        assert SevenBitDynamicScheme.name not in record["skipped"]
    else:
        assert "do not saturate (VNNI, or no AVX2)" in record["skipped"][SevenBitDynamicScheme.name]


def test_no_seven_bit_dynamic_candidate_where_dynamic_holds(tmp_path: Path) -> None:
    """7-bit weights run the same kernels: where 8-bit dynamic INT8 holds they could only drift more."""
    loose = DriftBudget(min_channel_correlation=0.5, min_cosine_mean=0.5, min_cosine_worst=0.5)
    search = SearchInt8(rows(128, 1), rows(96, 2), budget=loose, search=QUICK, cpu_flags=AVX2_ONLY)
    record = search(mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    schemes = [c["scheme"] for c in record["candidates"]]
    assert "dynamic" in schemes and SevenBitDynamicScheme.name not in schemes, schemes
    assert SevenBitDynamicScheme.name not in record["skipped"]


def _measured(scheme: str, holds: bool, speedup: float, reduce_range: bool = False) -> SimpleNamespace:
    drift = SimpleNamespace(holds=holds, margin=lambda: 0.5 if holds else -1.0)
    return SimpleNamespace(scheme=scheme, drift=drift, speedup=speedup, record={"reduce_range": reduce_range})


def test_no_seven_bit_twin_where_a_candidate_that_holds_already_ran_as_fast(tmp_path: Path) -> None:
    """The 7-bit twin runs the 8-bit one's kernels, so it cannot beat a holding candidate that ran as fast: not timed.
    all-MiniLM-L6-v2 still spent a calibration and a timing on static_qdq_7bit with dynamic holding at 3.18×."""
    run = FallbackSchemes.__new__(FallbackSchemes)
    run.stage = SimpleNamespace(calib=rows(8, 1), on_progress=None, cpu_flags=AVX2_ONLY, search=SearchSettings())
    run.static_settings, run.skipped = CalibrationSettings(), {}
    static, seven = _measured("static_qdq", False, 1.67), SevenBitStaticScheme.name
    assert run._seven_bit_scheme([static, _measured("dynamic", True, 3.18)]) is None  # type: ignore[list-item]
    assert run.skipped[seven] == (
        "dynamic holds the budget at 3.18× FP32, static_qdq ran 1.67×: 7-bit weights run the same kernels, never faster"
    )
    run.skipped = {}
    assert isinstance(run._seven_bit_scheme([static, _measured("dynamic", True, 1.2)]), SevenBitStaticScheme)  # type: ignore[list-item]
    dynamic = _measured("dynamic", False, 2.5)
    assert run._seven_bit_dynamic_scheme([dynamic, _measured("static_qdq_smooth", True, 2.6)]) is None  # type: ignore[list-item]
    assert "static_qdq_smooth holds the budget at 2.60× FP32" in run.skipped[SevenBitDynamicScheme.name]
    assert isinstance(run._seven_bit_dynamic_scheme([dynamic]), SevenBitDynamicScheme)  # type: ignore[list-item]
    lstm = _measured("dynamic", False, 2.5, reduce_range=True)  # an LSTM's dynamic weights were 7-bit already
    assert run._seven_bit_dynamic_scheme([lstm]) is None  # type: ignore[list-item]
