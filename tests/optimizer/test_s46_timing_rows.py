"""The speed timing's batch fits memory: --timing-batch, or fewer rows where FP32 and INT8 timed side by side would not.

rembg's U²-Net-p at the default batch 8 (session 46): the paired timing child peaked at 7.1 GB, optimize at 7.9 GB
in all; the FP32 session measured 0.36-0.47 GB a row. The rule is pure arithmetic on a measured footprint (no timing
asserted); a tiny CNN's optimize with the allowance set below one row shows where the lowered batch is said.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer import timing_rows
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.timing_rows import (
    Footprint,
    TimingRows,
    allowed_bytes,
    measure_footprint,
    rows_that_fit,
    searched_rows,
)
from quantserve.artifact import Manifest

GB = 10**9
# measured on u2netp upgraded to opset 13, its batch axis freed (session 46; optimize's fused file: 0.36 GB a row)
U2NETP = Footprint(session_bytes=90 * 10**6, row_bytes=470 * 10**6)


def test_a_batch_whose_paired_timing_would_not_fit_is_lowered_to_what_fits() -> None:
    rows = rows_that_fit(U2NETP, asked=8, allowed=2500 << 20)
    assert (rows.rows, rows.asked, rows.lowered) == (2, 8, True)  # 2 × (0.09 + 2 × 0.47) = 2.06 GB of 2.62
    assert rows.need_bytes == 2 * (90 + 8 * 470) * 10**6  # 7.7 GB: the 7.1 GB measured, both sessions at FP32's
    assert rows.note() == (
        "timed at batch 2, not 8: batch 8 would need ~7.7 GB of memory to time FP32 and INT8 side by side, 2.6 GB "
        "allowed (pass a smaller --timing-batch to choose it)"
    )
    assert rows.to_dict()["note"] == rows.note()


def test_a_batch_that_fits_is_timed_as_asked_and_one_row_always_is() -> None:
    assert rows_that_fit(U2NETP, 8, 16 * GB) == TimingRows(8, 8, 2 * (90 + 8 * 470) * 10**6, 16 * GB)
    assert not rows_that_fit(U2NETP, 8, 16 * GB).lowered and rows_that_fit(U2NETP, 8, 16 * GB).note() == ""
    assert rows_that_fit(U2NETP, 8, 1).rows == 1  # a row is what is served: timed even where it does not fit


def test_the_allowance_is_the_fixed_share_or_half_the_memory_free_where_less() -> None:
    assert allowed_bytes(64 * GB) == timing_rows.TIMING_MEMORY_BYTES
    assert allowed_bytes(3 * GB) == int(1.5 * GB)


def test_a_timing_batch_the_user_gave_is_lowered_only_past_half_the_memory_free() -> None:
    assert allowed_bytes(64 * GB, given=True) == 32 * GB  # their server's batch: 8 rows of U²-Net-p timed as asked
    assert not rows_that_fit(U2NETP, 8, allowed_bytes(64 * GB, given=True), given=True).lowered
    lowered = rows_that_fit(U2NETP, 8, allowed_bytes(6 * GB, given=True), given=True)
    assert lowered.rows == 3 and lowered.note().endswith(
        "~7.7 GB of memory to time FP32 and INT8 side by side, 3.0 GB half the memory free"
    )


def test_the_footprint_is_measured_on_the_session_as_timed(tiny_onnx: Path) -> None:
    footprint = measure_footprint(tiny_onnx, {"pixels": np.zeros((1, 1, 8, 8), np.float32)}, threads=1)
    assert footprint.session_bytes > 10 * 10**6 and footprint.row_bytes >= 0  # python, numpy and ORT at least


def test_the_search_and_the_gate_time_the_lowered_batch_and_say_so(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing_rows, "TIMING_MEMORY_BYTES", 1)  # below any row: batch 1
    speed = SpeedSettings(seconds_per_model=0.05, repeats=2, rounds=1, allow_slower=True)
    out = tmp_path / "tiny"
    optimize(OptimizeOptions(tiny_onnx, calib_npz, "int8", "embedded", out, speed=speed))
    manifest = Manifest.load(out)
    timed = (manifest.verification or {})["speed"]
    assert (timed["batch_size"], timed["batch_asked"], timed["input_shapes"]["pixels"][0]) == (1, 8, 1)
    assert timed["batch_note"].startswith("timed at batch 1, not 8: batch 8 would need ~")
    calibrate = next(stage for stage in manifest.stages if stage["stage"] == "calibrate")
    assert calibrate["speed"]["batch"] == 1 and calibrate["speed"]["timing_rows"]["rows"] == 1
    searched = searched_rows(manifest.stages)  # the gate timed the search's batch, not measured again
    assert searched is not None and (searched.rows, searched.asked) == (1, 8)
    from quantserve.cli.commands.optimize import speed_notes

    assert speed_notes(timed)[0] == timed["batch_note"]  # optimize prints it as a note
    from quantserve.cli.optimize_tables import _speed_row

    assert _speed_row(timed)[0] == f"speedup, batch 1 (not 8: memory), {timed['threads']} threads"  # and its table


def test_optimize_tells_a_given_timing_batch_from_its_default(tmp_path: Path) -> None:
    from quantserve.cli import build_parser
    from quantserve.cli.commands.optimize import build_options

    argv = ["optimize", "m.onnx", "--calib", "c.npz", "--out", str(tmp_path / "o")]
    default = build_options(build_parser().parse_args(argv)).speed
    given = build_options(build_parser().parse_args([*argv, "--timing-batch", "8"])).speed
    assert (default.batch_size, default.batch_given, given.batch_size, given.batch_given) == (8, False, 8, True)


def test_a_refusal_says_its_candidates_were_timed_at_a_lowered_batch(
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """U²-Net-p's drift refusal said nothing of the batch 2 its candidates were timed at, of the 8 asked."""
    from quantserve.cli import main

    monkeypatch.setattr(timing_rows, "TIMING_MEMORY_BYTES", 1)
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--precision", "int8"]
    argv += ["--output-kind", "logits=dense", "--min-channel-correlation", "1"]  # no INT8 model holds it
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "quantserve: note: timed at batch 1, not 8: batch 8 would need ~" in err and "no INT8 model holds" in err


def test_the_footprint_is_the_childs_own_not_its_parents(tiny_onnx: Path) -> None:
    """Linux keeps getrusage's peak RSS across exec: a child of a large process read its parent's peak as its own (a
    16-wide MatMul's search "needed" 4.3 GB at batch 8)."""
    ballast = np.ones(400 * 10**6 // 8)  # 400 MB resident in this process when the child is started
    footprint = measure_footprint(tiny_onnx, {"pixels": np.zeros((1, 1, 8, 8), np.float32)}, threads=1)
    assert footprint.row_bytes < 100 * 10**6 and ballast.sum() > 0
