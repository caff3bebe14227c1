"""An open loop's `offered_requests` is the arrivals its schedule offered in the measured window, however each
ended: answered in it or after it, sent or not by the stop, and not one that arrived before the window opened.

Counted by what ended in the window (answered, unanswered if sent by its end, unsent if due 0.25 s before it), 300
req/s through 8 in-flight slots to a model that answers ~100 read 1439 offered of 1521 planned (3.6 % short,
measured): 75 arrivals due in the last quarter second, 6 sent and 1 answered after the stop, in no count. With
--workers 2, whose schedules start before the master opens the window, answered requests that arrived 0.17 s
before it counted as the window's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest import recording_files
from loadtest.harness import run_pattern
from loadtest.load_pattern import OpenLoop
from loadtest.load_settings import LoadSettings
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, read_window
from loadtest.step_result import _result_of_window
from serving.server import TritonServer

START, END = 1_000.0, 1_010.0


def _rows(arrivals: np.ndarray, latency_ms: float) -> np.ndarray:
    """Answered rows (`recording_files.read_latencies`' columns) of requests that arrived at `arrivals`."""
    rows = np.zeros((len(arrivals), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = arrivals + latency_ms / 1000.0, latency_ms, 1.0
    return rows


def _record(record: Path) -> None:
    """A 10 s window at 100 arrivals a second (1000 due in it, the k-th at START + 0.01 k - 0.005), recorded as an
    overloaded open loop leaves it, and 20 arrivals from before the window opened, answered in it."""
    record.mkdir()
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": END}))
    due = START + 0.01 * np.arange(1, 1001) - 0.005
    before = START - 0.005 - 0.01 * np.arange(20)
    answered = [_rows(np.concatenate([before, due[:597]]), 300.0), _rows(due[597:600], 4200.0)]  # 3 end after it
    np.save(record / "latencies-1.npy", np.concatenate(answered))
    stop, sent = END + 0.02, np.array([END - 0.1, END - 0.05, END + 0.01])  # the last sent after the window's end
    waiting = np.column_stack([np.full(3, stop), (stop - sent) * 1000.0, np.ones(3), due[600:603]])
    np.save(record / "unanswered-1.npy", waiting)
    later = END + np.array([0.005, 0.015])  # due after the window's end, before the stop: not its arrivals
    np.save(record / "unsent-1.npy", np.column_stack([np.concatenate([due[603:], later]), np.ones(399)]))


def test_offered_counts_the_windows_arrivals_however_they_ended(tmp_path: Path) -> None:
    record = tmp_path / "raw"
    _record(record)
    arrivals = recording_files.read_arrivals(record)
    assert len(arrivals) == 20 + 600 + 3 + 399
    assert recording_files.offered_in_window(arrivals, START, END) == 1000
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), dtype=np.float32))
    step = OpenLoop(100.0)
    settings = LoadSettings("127.0.0.1:1", "m", data, step, duration_s=10.0)
    result = _result_of_window(settings, step, record, read_window(record), tmp_path / "locust" / "none")
    # 597 answered in the window, 20 of them before it; 372 unsent due 0.25 s or more before its end; on their way:
    # 3 answered after it, 3 sent and unanswered, 25 due in its last quarter second
    counts = (result.requests, result.arrived_before_window, result.unsent, result.in_flight_at_end, result.cut_at_end)
    assert (result.offered_requests, counts) == (1000, (617, 20, 372, 0, 31))
    on_their_way = result.cut_at_end + result.in_flight_at_end
    assert result.offered_requests == result.requests - result.arrived_before_window + result.unsent + on_their_way
    note = (
        "offered 1000 requests, 617 answered (20 of them arrived before the window opened), 31 on their way at the end"
    )
    assert f"{note}, 372 never sent" in (result.unsent_note() or "")


def test_an_unanswered_file_from_before_arrivals_were_recorded_counts_its_requests_as_sent(tmp_path: Path) -> None:
    """Three columns (stop, ms waited, samples): the request arrived when it was sent, as far as can be told."""
    np.save(tmp_path / "unanswered-1.npy", np.array([[102.0, 3000.0, 1.0], [102.0, 500.0, 2.0]]))
    np.testing.assert_allclose(recording_files.read_arrivals(tmp_path), [99.0, 101.5])
    np.testing.assert_allclose(recording_files.read_unanswered(tmp_path, end=101.8), [[2800.0, 1.0], [300.0, 2.0]])


@pytest.fixture(scope="module")
def slow_server(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """The test MLP, one request a batch, each execute sleeping 10 ms: ~100 requests a second at most."""
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("offered"), ("slow",), max_batch=1)
    model_py = repo / "slow" / "1" / "model.py"
    head = "    def execute(self, requests: list[Any]) -> list[Any]:\n"
    assert head in model_py.read_text()
    model_py.write_text(model_py.read_text().replace(head, f"{head}        import time; time.sleep(0.01)\n"))
    return triton_server_factory(repo), data


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
def test_an_overloaded_open_loop_offers_rate_times_window(
    slow_server: tuple[TritonServer, Path], workers: int, tmp_path: Path
) -> None:
    """300 req/s through 8 in-flight slots to a model that answers ~100: the window offered its rate × its length
    (constant arrivals: one either way per Locust process), and the counts add up to it."""
    server, data = slow_server
    settings = LoadSettings(server.grpc_url, "slow", data, OpenLoop(300.0), duration_s=3.0, workers=workers)
    settings.max_in_flight = 8
    (result,) = run_pattern(settings, tmp_path).results
    planned = 300.0 * settings.duration_s  # arrivals due past the planned end are not offered (its stop comes late)
    print(f"\n{result.label}: offered {result.offered_requests} of {planned:.1f}", *result.notes())
    assert result.offered_requests is not None
    assert abs(result.offered_requests - planned) <= max(2.0, 0.01 * planned), (result.offered_requests, planned)
    assert result.unsent > 0 and result.failed_requests == 0, "the model answers below the offered rate"
    on_their_way = result.cut_at_end + result.in_flight_at_end
    assert result.offered_requests == result.requests - result.arrived_before_window + result.unsent + on_their_way
