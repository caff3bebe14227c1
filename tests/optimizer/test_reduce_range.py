"""7-bit weights (`reduce_range`) as an INT8 search candidate on x86 CPUs without VNNI (issue 9).

The CPU's flags are injected (`SearchInt8(cpu_flags=…)`), so what is tried does not depend on the machine running
the tests; nothing asserts timing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import CalibrationSettings
from optimizer.cpu_isa import cpu_flags, u8s8_saturates
from optimizer.drift_budget import DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.int8_fallbacks import FallbackSchemes
from optimizer.int8_measure import SearchSettings
from optimizer.int8_schemes import SEVEN_BIT_WHY, SevenBitStaticScheme, StaticScheme
from optimizer.int8_search import SearchInt8
from quantserve.artifact import Artifact
from quantserve.data import TensorData

AVX2_ONLY = frozenset({"sse2", "avx", "avx2", "fma"})  # the AMD EPYC these were measured on
AVX512_VNNI = AVX2_ONLY | {"avx512f", "avx512bw", "avx512_vnni"}
AVX_VNNI = AVX2_ONLY | {"avx_vnni"}
QUICK = SearchSettings(max_search_s=600.0, max_mixed_s=1.0, max_probes=2, probe_samples=16, timing_repeats=1)
# misses on every machine (INT8 of two convs keeps correlation near 0.9999, not 0.999999): static_qdq misses
STRICT = DriftBudget(min_channel_correlation=0.999999, min_cosine_mean=0.999999, min_cosine_worst=0.999999)


def three_convs(path: Path) -> Artifact:
    """Conv 3×3 → Relu → Conv 1×1 → Relu → Conv 1×1 (the output, kept FP32): two convs for INT8."""
    rng = np.random.default_rng(0)
    shapes = {"c0": (16, 3, 3, 3), "c1": (16, 16, 1, 1), "c2": (4, 16, 1, 1)}
    inits = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.3, f"{n}.w") for n, s in shapes.items()
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c0.w"], ["h0"], name="c0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h0"], ["a0"], name="r0"),
        helper.make_node("Conv", ["a0", "c1.w"], ["h1"], name="c1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="r1"),
        helper.make_node("Conv", ["a1", "c2.w"], ["y"], name="c2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, "three_convs"))


def images(count: int, seed: int) -> TensorData:
    return TensorData({"x": np.random.default_rng(seed).standard_normal((count, 3, 8, 8)).astype(np.float32)})


def int8_weights(path: Path) -> np.ndarray:
    model = onnx.load(str(path))
    arrays = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8]
    return np.concatenate([a.ravel() for a in arrays])


def test_vnni_flags_decide_whether_u8s8_products_saturate() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n"
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert u8s8_saturates(cpu_flags(cpuinfo)) and u8s8_saturates(AVX2_ONLY)
    assert not u8s8_saturates(AVX512_VNNI) and not u8s8_saturates(AVX_VNNI)
    assert not u8s8_saturates(AVX2_ONLY | {"amx_int8"})
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\n"  # ARM: no `flags` line, kernels widen to 16 bits per product
    assert cpu_flags(arm) == frozenset() and not u8s8_saturates(cpu_flags(arm))


def test_seven_bit_scheme_quantizes_weights_to_seven_bits_and_says_why(tmp_path: Path) -> None:
    art, calib = three_convs(tmp_path / "m.onnx"), images(16, 1)
    eight = StaticScheme(calib, CalibrationSettings()).build(art, [], tmp_path / "8.onnx")
    seven_scheme = SevenBitStaticScheme(calib, CalibrationSettings())
    seven = seven_scheme.build(art, [], tmp_path / "7.onnx")
    assert np.abs(int8_weights(eight)).max() == 127  # per-channel symmetric: each channel's largest weight at ±127
    assert np.abs(int8_weights(seven)).max() <= 64  # 7 bits: [-64, 64]
    record = seven_scheme.records[seven]
    assert record["reduce_range"] is True and record["reduce_range_why"] == SEVEN_BIT_WHY


@pytest.mark.parametrize(("flags", "tried"), [(AVX2_ONLY, True), (AVX512_VNNI, False)])
def test_search_tries_seven_bit_weights_only_on_a_cpu_without_vnni(
    tmp_path: Path, flags: frozenset[str], tried: bool
) -> None:
    art = three_convs(tmp_path / "m.onnx")
    search = SearchInt8(images(64, 1), images(64, 2), budget=STRICT, search=QUICK, keep_failing=True, cpu_flags=flags)
    record = search(art, tmp_path / "int8.onnx").manifest.stages[-1]
    by_scheme = {c["scheme"]: c for c in record["candidates"]}
    assert not by_scheme["static_qdq"]["holds"], "8-bit static Q/DQ must miss (the premise)"
    assert (SevenBitStaticScheme.name in by_scheme) == tried, record["candidates"]
    if tried:  # built and measured like any other candidate
        seven = by_scheme[SevenBitStaticScheme.name]
        assert seven["margin"] < 0 and seven["run_ms"] > 0 and seven["speedup"] > 0, seven
        assert SevenBitStaticScheme.name not in record["skipped"]
    else:
        assert "do not saturate (VNNI, or no AVX2)" in record["skipped"][SevenBitStaticScheme.name]


def test_no_seven_bit_candidate_where_eight_bit_weights_hold(tmp_path: Path) -> None:
    """7-bit weights run the same kernels: where 8-bit static Q/DQ holds they could only drift more."""
    loose = DriftBudget(min_channel_correlation=0.9, min_cosine_mean=0.9, min_cosine_worst=0.9)
    search = SearchInt8(images(64, 1), images(64, 2), budget=loose, search=QUICK, cpu_flags=AVX2_ONLY)
    record = search(three_convs(tmp_path / "m.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    assert [c["scheme"] for c in record["candidates"]] == ["static_qdq"] and record["within_budget"]


def _missing(scheme: str, margin: float) -> SimpleNamespace:
    drift = SimpleNamespace(holds=False, margin=lambda: margin)
    return SimpleNamespace(scheme=scheme, drift=drift)


def test_compute_only_fallback_takes_the_weights_that_drifted_less(tmp_path: Path) -> None:
    """Where 8-bit and 7-bit static Q/DQ both missed, the compute-ops-only scheme uses the closer one's weights."""
    run = FallbackSchemes.__new__(FallbackSchemes)
    run.stage = SimpleNamespace(settings=CalibrationSettings(), calib=images(8, 1), on_progress=None)
    run.stage.search = SearchSettings()
    run.failed, run.encoder = {}, None
    run.model = onnx.load(str(three_convs(tmp_path / "m.onnx").path))
    for seven_margin, reduce_range in ((-0.5, True), (-3.0, False)):
        tried = [_missing("static_qdq", -2.0), _missing(SevenBitStaticScheme.name, seven_margin)]
        scheme = run._compute_only_scheme(tried)  # type: ignore[arg-type]
        assert scheme is not None and scheme.settings.reduce_range is reduce_range
        assert scheme.why == (SEVEN_BIT_WHY if reduce_range else None)
        assert scheme.settings.quantize_op_types == ("Conv",)
