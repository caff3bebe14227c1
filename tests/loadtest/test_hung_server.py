"""A tritonserver that stops answering mid-run (SIGSTOP: alive and silent) shows in the load's figures.

Locust drops the requests still in flight when a run stops, so before this a hung server left a
result of fewer requests, no failure and the answered requests' p99, and the metrics scrape that
timed out at the window's end made the whole run fail with a line about metrics.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest import recording_files
from loadtest.harness import LoadSettings, run_pattern
from loadtest.load_pattern import ClosedLoop, LoadPattern, OpenLoop
from loadtest.report import render
from loadtest.results import UNANSWERED_ERROR, LoadResult, LoadRun
from serving.deploy import deploy
from serving.server import TritonServer

HANG_AT_S = 4.0  # seconds into the run: the measured window starts a second or two in


@pytest.fixture(scope="module")
def hangable(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """A server of its own (no other test's server is stopped) and the data to load it with."""
    root = tmp_path_factory.mktemp("hung")
    weights = models.mlp_weights()
    data = models.labeled_data(64, weights, seed=3).save(root / "load.npz")
    deploy(models.make_build_dir(root / "build", weights=weights), root / "repo", "mlp", max_batch=8, instances=1)
    return triton_server_factory(root / "repo"), data


def _load_while_hung(server: TritonServer, data: Path, pattern: LoadPattern, workers: int, out: Path) -> LoadResult:
    """Load `server` with `pattern`; stop its process HANG_AT_S into the run and let it go once the run is over."""
    settings = LoadSettings(
        server.grpc_url, "mlp", data, pattern, duration_s=8.0, workers=workers, metrics_url=server.metrics_url
    )
    runs: list[LoadRun] = []
    load = threading.Thread(target=lambda: runs.append(run_pattern(settings, out)))
    load.start()
    time.sleep(HANG_AT_S)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        load.join(timeout=120)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert runs, "the run must end with a result, not die on the silent server"
    result = runs[0].results[0]
    print(f"\n{result.label}: {result.requests} requests, {result.failed_requests} failed")
    print("\n".join(result.notes()))
    return result


@pytest.mark.parametrize(
    ("pattern", "workers", "expected"),
    [(ClosedLoop(users=4), 0, 4), (OpenLoop(rate=60.0), 2, 8)],  # open loop: ≥ 1 arrival a second for ≥ 8 s unanswered
    ids=["closed-loop", "open-loop-2-workers"],
)
def test_requests_a_hung_server_never_answered_count_as_failed(
    hangable: tuple[TritonServer, Path], pattern: LoadPattern, workers: int, expected: int, tmp_path: Path
) -> None:
    server, data = hangable
    result = _load_while_hung(server, data, pattern, workers, tmp_path)
    stuck = result.errors.get(UNANSWERED_ERROR, 0)
    assert stuck >= expected and result.failed_requests >= stuck
    assert result.unanswered_max_ms is not None and result.unanswered_max_ms > 3000.0  # hung ≥ 4 s before the end
    assert result.unanswered_max_ms > result.latency.max_ms
    # the silent seconds are an outage: no success in them, the unanswered requests counted at the window's end
    worst = max(result.outages, key=lambda o: o.duration_s)
    assert worst.duration_s >= 3.0 and worst.end_s == pytest.approx(result.window_s, abs=0.01)
    # the counters could not be read at the end: server-side figures left out, and said why
    assert result.server is None and "not reachable" in (result.metrics_missing or "")
    markdown = render(tmp_path)[0].read_text()
    assert "- Unanswered: " in markdown and "- Counters: " in markdown


def test_a_request_cut_by_the_stop_is_not_a_failure() -> None:
    """Requests in flight at the end that waited less than the floor, or than answered ones took, are ordinary."""
    answered = np.zeros((3, recording_files.SAMPLE_COLUMNS))
    answered[:, 1], answered[:, 2] = [5.0, 1800.0, 7.0], 1.0  # the slowest answered request took 1.8 s
    waiting = np.array([[3.0, 1.0], [recording_files.UNANSWERED_FLOOR_MS - 1, 1.0], [1500.0, 1.0], [2500.0, 4.0]])
    rows = recording_files.unanswered_rows(answered, waiting, end=100.0)
    assert rows[:, 1].tolist() == [2500.0] and rows[:, 0].tolist() == [100.0] and rows[:, 5].tolist() == [4.0]
    assert rows[:, 2].tolist() == [0.0]  # failed
    nothing_answered = recording_files.unanswered_rows(answered[:0], waiting, end=100.0)
    assert len(nothing_answered) == 2  # the floor alone


def test_unanswered_waits_are_measured_to_the_window_end(tmp_path: Path) -> None:
    """A Locust process notes each request's wait when its user stops (after the window's end): the wait counted is
    the one at the end; a request sent after the end is not counted."""
    # (stop wall time, ms waited at the stop, samples): sent at 90 s, at 99 s, and at 101 s (after the end)
    np.save(tmp_path / "unanswered-1.npy", np.array([[102.0, 12000.0, 1.0], [102.0, 3000.0, 2.0], [102.0, 500, 1.0]]))
    waits = recording_files.read_unanswered(tmp_path, end=100.0)
    np.testing.assert_allclose(waits, [[10000.0, 1.0], [1000.0, 2.0]])
