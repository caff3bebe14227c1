"""FP32 vs INT8 timing: each model alone in a child process; the verdict and its one line (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.speed import SpeedRecord, SpeedSettings, compare_speed, cpu_model
from quantserve.errors import QuantserveError

FAST = SpeedSettings(seconds_per_model=0.05, repeats=2, rounds=1)


def _record(speedup: float, min_speedup: float = 1.0) -> SpeedRecord:
    return SpeedRecord(1.0, 1.0 / speedup, speedup, min_speedup, 8, 2, "a CPU")


def test_slower_int8_is_refused_in_one_line() -> None:
    assert not _record(0.68).holds
    assert _record(0.68).line() == "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"
    assert (
        _record(1.3, 1.5).line()
        == "INT8 is 1.30× FP32 here, below --min-speedup 1.5; deploy fp32 (or pass --allow-slower)"
    )
    assert _record(1.0).holds and _record(1.6, 1.5).holds


def test_both_models_are_timed_in_child_processes(tiny_onnx: Path) -> None:
    batch = {"pixels": np.zeros((4, 1, 8, 8), np.float32)}
    record = compare_speed(tiny_onnx, tiny_onnx, batch, SpeedSettings(seconds_per_model=0.1, repeats=2, rounds=2))
    assert record.fp32_ms > 0 and record.int8_ms > 0
    assert len(record.round_speedups) == 2  # one back-to-back FP32/INT8 ratio per round
    assert record.speedup == pytest.approx(sum(record.round_speedups) / 2)  # the median of two
    assert (record.batch_size, record.cpu) == (4, cpu_model())
    assert record.threads >= 1 and record.to_dict()["holds"] == record.holds


def test_a_model_the_child_cannot_load_is_one_user_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(QuantserveError, match=r"broken\.onnx: ONNX Runtime cannot load the model"):
        compare_speed(broken, broken, {"x": np.zeros((1, 2), np.float32)}, FAST)


def test_settings_are_checked() -> None:
    with pytest.raises(QuantserveError, match="speed settings must be positive"):
        SpeedSettings(min_speedup=0.0)
