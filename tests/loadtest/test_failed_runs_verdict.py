"""A load that failed or served nothing never passes: the report's verdict fails on failed requests, an outage or a
variant that served nothing (a NaN speedup compared False with `< 1.0` and passed), and the notes say what each of
their counts counts. A step in which no request completed makes the loadtest exit 1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from loadtest import recording_files
from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.timeline import Outage
from quantserve.cli.commands.loadtest import failure_status

DEAD = "TritonRequestFailed(\"[StatusCode.INTERNAL] Stub process 'ref_fp32_0_0' is not healthy.\")"


def _step(model: str, requests: int, failed: int, window_s: float = 6.0) -> LoadResult:
    latencies = np.full(requests - failed, 50.0)
    ok = requests - failed
    return LoadResult(
        model, "127.0.0.1:1", "closed", 4, window_s, requests, failed, ok / window_s, 16 * ok / window_s,
        LatencySummary.from_samples(latencies), 16,
    )  # fmt: skip


def _dead_reference(folder: Path) -> Path:
    """The probe's run: ref_fp32's backend killed (every request failed), good_int8 serving 46.3 req/s."""
    dead = _step("ref_fp32", 10, 10, window_s=6.14)
    dead.errors, dead.outages = {DEAD: 12}, [Outage(0.0, 6.14, 10)]
    LoadRun("ref_fp32", [dead]).save(folder)
    LoadRun("good_int8", [_step("good_int8", 283, 0, window_s=6.11)]).save(folder)
    return folder


def test_a_reference_that_served_nothing_is_no_pass_and_no_nan(tmp_path: Path) -> None:
    verdict = load_results(_dead_reference(tmp_path)).verdict
    headline = verdict_headline(verdict)
    assert not verdict.passed and headline.startswith("FAIL"), headline
    assert "nan" not in headline.lower(), headline
    assert "served INT8 vs FP32 not comparable: ref_fp32 served nothing at 4 users" in headline, headline
    assert any(
        line.startswith("ref_fp32 @ 4 users: 10 of 10 requests ended failed in the window") for line in verdict.failures
    )
    assert '<span class="fail">FAIL</span>' in render(tmp_path)[1].read_text()


def test_failed_requests_and_an_outage_fail_a_verdict_that_is_faster(tmp_path: Path) -> None:
    """The probe's late_int8: 1.34× FP32, but dead for the last 3.1 s of its window with failed requests."""
    LoadRun("ref_fp32", [_step("ref_fp32", 315, 0, 12.1)]).save(tmp_path)
    late = _step("late_int8", 428, 5, 12.1)
    late.outages = [Outage(9.05, 12.14, 5)]
    LoadRun("late_int8", [late]).save(tmp_path)
    verdict = load_results(tmp_path).verdict
    assert verdict.served is not None and verdict.served.speedup > 1.0
    assert not verdict.passed and verdict_headline(verdict).startswith("FAIL · INT8 1.34× FP32 served")
    [line] = verdict.failures
    assert line.startswith("late_int8 @ 4 users: 5 of 428 requests failed (1.2 %)") and "3.1 s" in line, line


def test_accuracy_and_load_files_with_failed_requests_do_not_pass(tmp_path: Path) -> None:
    reference = VariantAccuracy("m_fp32", 64, 1.0, accuracy=0.98, accuracy_drop_points=0.0)
    int8 = VariantAccuracy("m_int8", 64, 1.0, accuracy=0.98, accuracy_drop_points=0.0)
    AccuracyReport("m_fp32", "h.npz", "logits", True, 1.0, [reference, int8]).save(tmp_path)
    LoadRun("m_fp32", [_step("m_fp32", 500, 134)]).save(tmp_path)  # 26.8 % failed
    LoadRun("m_int8", [_step("m_int8", 900, 0)]).save(tmp_path)
    verdict = load_results(tmp_path).verdict
    assert not verdict.passed, verdict_headline(verdict)
    assert verdict.failures == ["m_fp32 @ 4 users: 134 of 500 requests failed (26.8 %)"]


def test_a_faultless_comparison_still_passes(tmp_path: Path) -> None:
    LoadRun("m_fp32", [_step("m_fp32", 300, 0)]).save(tmp_path)
    LoadRun("m_int8", [_step("m_int8", 600, 0)]).save(tmp_path)
    assert verdict_headline(load_results(tmp_path).verdict).startswith("PASS · INT8 2.00× FP32 served")


def test_the_failure_note_says_what_its_two_counts_count() -> None:
    """10 requests ended failed inside the window; Locust's error table also counts the 2 that failed after it."""
    dead = _step("ref_fp32", 10, 10, window_s=6.14)
    dead.errors = {DEAD: 12}
    note = dead.failure_note() or ""
    assert note.startswith("ref_fp32 @ 4 users: 10 of 10 requests ended failed in the window (100.0 %)"), note
    assert "Locust counted 12 × TritonRequestFailed(" in note and "over its whole run, after the window too" in note


def test_requests_waiting_while_others_fail_are_not_blamed_on_a_slow_model() -> None:
    """Nothing succeeded, requests failed after ~2.4 s each, two more waited 1.96 s at the end: on their way to the
    same error, not a model slower than the window."""
    failed = np.zeros((10, recording_files.SAMPLE_COLUMNS))
    failed[:, 1], failed[:, 2] = 2400.0, 0.0
    waiting = np.array([[1960.0, 16.0], [1900.0, 16.0]])
    assert len(recording_files.still_in_flight(failed, waiting, server_answering=True)) == 0
    result = _step("ref_fp32", 10, 10)
    result.in_flight_at_end, result.in_flight_max_ms = 2, 1960.0
    assert not any("slower than the window" in note for note in result.notes()), result.notes()


def test_a_step_in_which_no_request_completed_exits_1_even_with_allow_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """slow40 under a 9 s window: 0 requests, 2 still in flight; it measured nothing, and said exit 0."""
    nothing = _step("slow40", 0, 0, window_s=9.1)
    nothing.in_flight_at_end, nothing.in_flight_max_ms = 2, 9100.0
    assert math.isnan(nothing.latency.p50_ms)
    for allowed in (False, True):
        assert failure_status([LoadRun("slow40", [nothing])], allowed) == 1
        err = capsys.readouterr().err
        assert err == (
            "quantserve loadtest: slow40 @ 4 users: no request completed in its 9.1 s window, nothing was measured "
            "(notes above, report written); exit 1\n"
        )
