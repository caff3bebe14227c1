"""A timing batch lowered for want of held-out rows says so, never a memory figure that did not decide it.

Probe 66C (an --unbatched hand detector, 32 calibration rows, 6 held out): optimize noted "timed at batch 6, not 8:
batch 8 would need ~0.0 GB of memory … 0.0 GB allowed (pass a smaller --timing-batch …)". Nothing was measured: only
6 held-out rows existed, and an --unbatched build is timed one request at a time whatever the batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer import timing_rows
from optimizer.timing_rows import Footprint, TimingRows, fit_timing_rows, searched_rows
from quantserve.data import TensorData


def _measured(fp32: Path, row: dict, threads: int, more: dict | None = None, rows: int = 1) -> Footprint:
    return Footprint(session_bytes=1 << 20, row_bytes=1 << 20)  # a tiny model: any batch fits


def test_a_batch_lowered_to_the_held_out_rows_names_them_and_no_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing_rows, "measure_footprint", _measured)
    chosen = fit_timing_rows(tmp_path / "m.onnx", TensorData({"x": np.zeros((6, 4), np.float32)}), 8, threads=1)
    assert (chosen.rows, chosen.asked, chosen.lowered) == (6, 8, True)
    assert chosen.note() == (
        "timed at batch 6, not 8: only 6 held-out rows to time (pass --eval with at least 8 rows, or "
        "--timing-batch 6 to choose it)"
    )
    assert "GB" not in chosen.note()
    again = searched_rows([{"speed": {"timing_rows": chosen.to_dict()}}])  # the gate reads the search's record
    assert again is not None and again.note() == chosen.note()


def test_an_unbatched_build_is_timed_a_request_at_a_time_without_a_lowered_batch_note(tmp_path: Path) -> None:
    data = TensorData({"x": np.zeros((6, 4), np.float32)}, unbatched=True)
    chosen = fit_timing_rows(tmp_path / "m.onnx", data, 8, threads=1)
    assert chosen.rows == 1 and chosen.note() == ""  # its batches are one request each (`TensorData.batches`)


def test_a_batch_lowered_for_memory_below_the_held_out_rows_still_gives_the_memory_reason() -> None:
    lowered = TimingRows(rows=2, asked=8, need_bytes=6 * 10**9, allowed_bytes=2 * 10**9, held_out=6)
    assert lowered.note() == (
        "timed at batch 2, not 8: only 6 held-out rows, and batch 6 would need ~6.0 GB of memory to time FP32 and "
        "INT8 side by side, 2.0 GB allowed (pass a smaller --timing-batch to choose it)"
    )
