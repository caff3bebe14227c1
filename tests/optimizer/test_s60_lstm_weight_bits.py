"""An LSTM's dynamic INT8 weights are 7-bit only on a CPU whose u8 × s8 kernels saturate (AVX2 without VNNI).

Session 60: nagisa's BiLSTM on an AVX512-VNNI EPYC drifted less with 8-bit per-channel weights at the same speed
(relative error 0.0087 vs 0.0097 segmentation, 0.0098 vs 0.0128 POS), yet every LSTM got 7-bit weights on any CPU.
The CPU's flags are injected, so nothing depends on the machine running the tests; nothing asserts timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from test_int8_search import FAST, lstm_encoder
from test_reduce_range import AVX2_ONLY, AVX512_VNNI, AVX_VNNI

from optimizer.drift_budget import DriftBudget
from optimizer.int8_schemes import SEVEN_BIT_WHY, DynamicScheme
from optimizer.int8_search import SearchInt8
from quantserve.data import TensorData

ARM: frozenset[str] = frozenset()  # an ARM cpuinfo has no `flags` line (`optimizer.cpu_isa.cpu_flags`)


def largest_int8_weight(path: Path) -> int:
    model = onnx.load(str(path))
    return max(
        int(np.abs(numpy_helper.to_array(t)).max()) for t in model.graph.initializer if t.data_type == TensorProto.INT8
    )


@pytest.mark.parametrize(
    ("flags", "seven_bit"), [(AVX2_ONLY, True), (AVX512_VNNI, False), (AVX_VNNI, False), (ARM, False)]
)
def test_an_lstm_gets_seven_bit_weights_only_on_a_cpu_whose_int8_kernels_saturate(
    tmp_path: Path, flags: frozenset[str], seven_bit: bool
) -> None:
    art = lstm_encoder(tmp_path / "lstm.onnx")
    scheme = DynamicScheme(cpu_flags=flags)
    built = scheme.build(art, [], tmp_path / "int8.onnx")
    record = scheme.records[built]
    assert "DynamicQuantizeLSTM" in {n.op_type for n in onnx.load(str(built)).graph.node}
    assert record["reduce_range"] is seven_bit
    assert record.get("reduce_range_why") == (SEVEN_BIT_WHY if seven_bit else None)
    assert largest_int8_weight(built) == (64 if seven_bit else 127)  # per-channel symmetric: ±64 in 7 bits


@pytest.mark.parametrize(("flags", "seven_bit"), [(AVX2_ONLY, True), (AVX512_VNNI, False)])
def test_the_search_builds_an_lstm_with_the_serving_cpus_weight_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], seven_bit: bool
) -> None:
    """`SearchInt8(cpu_flags=…)` reaches the dynamic scheme, whatever CPU runs the build."""
    records: list[dict[str, object]] = []
    build = DynamicScheme.build

    def spied(self: DynamicScheme, *args: object) -> Path:
        built = build(self, *args)  # type: ignore[arg-type]
        if self.name == DynamicScheme.name:  # not a 7-bit fallback
            records.append(self.records[built])
        return built

    monkeypatch.setattr(DynamicScheme, "build", spied)
    rng = np.random.default_rng(8)
    calib = TensorData({"x": rng.standard_normal((64, 12, 16)).astype(np.float32)})
    held = TensorData({"x": rng.standard_normal((64, 12, 16)).astype(np.float32)})
    loose = DriftBudget(min_channel_correlation=0.5, min_cosine_mean=0.5, min_cosine_worst=0.5)
    search = SearchInt8(calib, held, budget=loose, search=FAST, cpu_flags=flags)
    search(lstm_encoder(tmp_path / "lstm.onnx"), tmp_path / "int8.onnx")
    assert records and all(r["reduce_range"] is seven_bit for r in records), records
