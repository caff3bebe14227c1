"""FP32 vs INT8 timing: both models alternated in one child process; the verdict and its line (no timing asserted)."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from optimizer.speed import SpeedRecord, SpeedSettings, compare_speed, cpu_model, timing_batch
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

FAST = SpeedSettings(seconds_per_model=0.05, repeats=2, rounds=1)


def _record(speedup: float, min_speedup: float = 1.0) -> SpeedRecord:
    return SpeedRecord(1.0, 1.0 / speedup, speedup, min_speedup, 8, 2, "a CPU")


def test_slower_int8_is_refused_in_one_line() -> None:
    assert not _record(0.68).holds
    assert _record(0.68).line() == "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"
    assert _record(0.68).line(drift_holds=True).endswith("(or pass --allow-slower); its drift is within the budget")
    assert _record(0.68).line(drift_holds=False).endswith("(or pass --allow-slower); its drift misses the budget too")
    assert (
        _record(1.3, 1.5).line()
        == "INT8 is 1.30× FP32 here, below --min-speedup 1.5; deploy fp32 (or pass --allow-slower)"
    )
    assert _record(1.0).holds and _record(1.6, 1.5).holds


def test_a_timing_on_a_busy_machine_says_so() -> None:
    busy = SpeedRecord(1.0, 1 / 0.9, 0.9, 1.1, 8, 2, "a CPU", others_share=0.77)
    assert busy.busy and busy.to_dict()["busy"] is True
    assert busy.line() == (
        "INT8 is 0.90× FP32 here, below --min-speedup 1.1; deploy fp32 (or pass --allow-slower); "
        "timed on a busy machine (other processes used 77% of the cores): time again when idle"
    )
    assert not _record(0.9).busy and "busy" not in _record(0.9).line()  # unknown (not Linux): no claim
    assert not SpeedRecord(1.0, 1.0, 1.0, 1.0, 8, 2, "a CPU", others_share=0.1).busy
    from quantserve.cli.commands.optimize import busy_note  # what optimize prints when it ships such a figure

    assert busy_note(busy.to_dict()) == (
        "INT8 was timed at 0.90× FP32 while other processes took 77% of the cores: that figure is uncertain; "
        "time again when the machine is idle"
    )


def test_both_models_are_timed_alternately_in_a_child_process(tiny_onnx: Path) -> None:
    batch = {"pixels": np.zeros((4, 1, 8, 8), np.float32)}
    record = compare_speed(tiny_onnx, tiny_onnx, batch, SpeedSettings(seconds_per_model=0.1, repeats=2, rounds=2))
    assert record.fp32_ms > 0 and record.int8_ms > 0
    # one ratio per block of alternated pairs kept: two, or up to two more where busy ones were retaken
    assert 2 <= len(record.round_speedups) + record.busy_rounds_dropped <= 4
    assert record.speedup == pytest.approx(statistics.median(record.round_speedups))
    assert (record.batch_size, record.cpu, record.input_shapes) == (4, cpu_model(), {"pixels": [4, 1, 8, 8]})
    assert record.threads >= 1 and record.to_dict()["holds"] == record.holds
    assert record.others_share is not None and 0.0 <= record.others_share <= 1.0  # measured from /proc/stat


def test_the_childs_loop_times_at_least_the_minimum_pairs_of_both_models(tiny_onnx: Path) -> None:
    """The child's own loop, run here: both models timed, at least `min_pairs` pairs (timings themselves unasserted)."""
    from optimizer.speed import time_alternating

    batch = {"pixels": np.zeros((2, 1, 8, 8), np.float32)}
    block = time_alternating((tiny_onnx, tiny_onnx), batch, threads=1, seconds=0.05, min_pairs=3)
    assert block.pairs >= 3 and block.fp32_ms > 0 and block.int8_ms > 0 and block.ratio > 0
    assert block.others_share is None or 0.0 <= block.others_share <= 1.0


def test_a_model_the_child_cannot_load_is_one_user_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(QuantserveError, match=r"broken\.onnx: ONNX Runtime cannot load the model"):
        compare_speed(broken, broken, {"x": np.zeros((1, 2), np.float32)}, FAST)


def test_settings_are_checked() -> None:
    with pytest.raises(QuantserveError, match="speed settings must be positive"):
        SpeedSettings(min_speedup=0.0)


def test_the_timed_batch_is_the_first_rows_of_the_held_out_data_as_given() -> None:
    tokens = np.arange(10 * 6).reshape(10, 6)  # 10 rows, padded to 6 positions: timed as they will be served
    data = TensorData({"input_ids": tokens, "attention_mask": (tokens % 6 < 4).astype(np.int64)})
    batch = timing_batch(data, SpeedSettings(batch_size=4))
    assert {k: v.shape for k, v in batch.items()} == {"input_ids": (4, 6), "attention_mask": (4, 6)}
    assert (batch["input_ids"] == tokens[:4]).all()
    assert len(timing_batch(data, SpeedSettings(batch_size=32))["input_ids"]) == 10  # all there is
    with pytest.raises(QuantserveError, match="no held-out samples to time"):
        timing_batch(TensorData({"x": np.zeros((0, 2), np.float32)}), SpeedSettings())
    with pytest.raises(QuantserveError, match="--timing-batch"):
        SpeedSettings(batch_size=0)


def test_busy_blocks_are_retaken_and_left_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The block-selection rule alone (the blocks are scripted): a busy block is retaken, and the figure
    comes from the quiet blocks once two exist."""
    import optimizer.speed as speed

    quiet, busy = 0.05, 0.8
    honest = speed.Block(10.0, 5.0, 2.0, quiet, 5)
    lucky = speed.Block(10.0, 1.0, 10.0, busy, 5)  # INT8 looks fast because FP32 was starved

    def scripted(blocks: list[speed.Block]) -> None:
        queue = iter(blocks)
        monkeypatch.setattr(speed, "time_pair", lambda *_: next(queue))

    batch = {"x": np.zeros((2, 3), np.float32)}
    scripted([honest, lucky, honest, lucky, honest, honest])  # retaken until three quiet ones
    record = compare_speed(tmp_path / "a", tmp_path / "b", batch, SpeedSettings(rounds=3))
    assert record.round_speedups == (2.0, 2.0, 2.0) and record.busy_rounds_dropped == 2 and not record.busy
    scripted([lucky] * 6)  # busy throughout: all six blocks kept, marked busy
    record = compare_speed(tmp_path / "a", tmp_path / "b", batch, SpeedSettings(rounds=3))
    assert len(record.round_speedups) == 6 and record.busy and record.busy_rounds_dropped == 0
    assert "timed on a busy machine" in record.line()
