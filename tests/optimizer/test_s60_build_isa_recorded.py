"""An INT8 build records the CPU its drift was verified on: its INT8 flags, whether its u8 × s8 kernels saturate, and
whether the build's weights are 8-bit (which saturate on an x86 CPU without VNNI), so deploy can warn where a build
verified on a VNNI CPU is served on an AVX2-only one (session 60). The machine's /proc/cpuinfo is faked and the
serving CPU's flags injected, so nothing depends on the machine running the tests; nothing asserts timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_int8_search import FAST, lstm_encoder
from test_reduce_range import AVX2_ONLY, AVX512_VNNI

import optimizer.cpu_isa
import optimizer.speed
from optimizer.cpu_isa import BUILD_CPU, SATURATING_WEIGHTS, saturating_weights
from optimizer.drift_budget import DriftBudget
from optimizer.int8_search import SearchInt8
from quantserve.data import TensorData


def cpuinfo(model: str, flags: frozenset[str]) -> str:
    return f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: fpu sse2 avx {' '.join(sorted(flags))}\n"


@pytest.mark.parametrize(
    ("model", "flags", "saturates", "eight_bit"),
    [("AMD EPYC 9B14", AVX512_VNNI, False, True), ("AMD EPYC 7B12", AVX2_ONLY, True, False)],
)
def test_an_int8_build_records_the_isa_of_the_cpu_it_was_verified_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, flags: frozenset[str], saturates: bool, eight_bit: bool
) -> None:
    text = cpuinfo(model, flags)
    monkeypatch.setattr(optimizer.cpu_isa, "read_cpuinfo", lambda: text)
    monkeypatch.setattr(optimizer.speed, "read_cpuinfo", lambda: text)
    rng = np.random.default_rng(8)
    calib = TensorData({"x": rng.standard_normal((64, 12, 16)).astype(np.float32)})
    held = TensorData({"x": rng.standard_normal((64, 12, 16)).astype(np.float32)})
    loose = DriftBudget(min_channel_correlation=0.5, min_cosine_mean=0.5, min_cosine_worst=0.5)
    built = SearchInt8(calib, held, budget=loose, search=FAST, cpu_flags=flags)(
        lstm_encoder(tmp_path / "lstm.onnx"), tmp_path / "int8.onnx"
    )
    record = built.manifest.stages[-1]
    expected_flags = sorted(flags & {"avx2", "avx512_vnni", "avx_vnni", "amx_int8"})
    assert record[BUILD_CPU] == {"model": model, "flags": expected_flags, "u8s8_saturates": saturates}
    assert record["reduce_range"] is not eight_bit  # an LSTM takes 7-bit weights only where the kernels saturate
    assert record[SATURATING_WEIGHTS] is eight_bit


def test_seven_bit_or_unsigned_weights_do_not_saturate() -> None:
    assert saturating_weights({"reduce_range": False, "weight_type": "QInt8"})
    assert saturating_weights({})  # the INT8 schemes' default: s8 weights, full range
    assert not saturating_weights({"reduce_range": True, "weight_type": "QInt8"})
    assert not saturating_weights({"reduce_range": False, "weight_type": "QUInt8"})
