"""The report's deadline line says what the printed one does (session 43): the queue delay as the cause."""

from __future__ import annotations

from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult


def _failed(queue_delay_s: float | None) -> LoadResult:
    latency = LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    result = LoadResult("slowq", "127.0.0.1:8001", "closed", 2, 5.0, 10, 10, 0.0, 0.0, latency)
    result.deadline_failures, result.request_timeout_s, result.queue_delay_s = 10, 1.0, queue_delay_s
    return result


def test_the_reports_deadline_line_names_the_queue_delay_as_the_printed_notes_do(tmp_path: Path) -> None:
    result = _failed(2.0)
    printed = [note for note in result.notes() if "deadline (--request-timeout)" in note]
    LoadRun("slowq", [result]).save(tmp_path)  # the report reads the saved file
    (loaded,) = LoadRun.load(next(tmp_path.glob("load-slowq*.json"))).results
    reported = [note for kind, note in step_lines([LoadRun("slowq", [loaded])]) if kind == "Deadline"]
    assert reported == printed
    assert "max_queue_delay of 2 s" in reported[0]
