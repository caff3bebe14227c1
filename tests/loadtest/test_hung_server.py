"""A tritonserver that stops answering mid-run (SIGSTOP: alive and silent) shows in the load's figures.

Locust drops the requests still in flight when a run stops, so before this a hung server left a
result of fewer requests, no failure and the answered requests' p99, and the metrics scrape that
timed out at the window's end made the whole run fail with a line about metrics.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest import recording_files
from loadtest.harness import run_pattern
from loadtest.load_pattern import ClosedLoop, LoadPattern, OpenLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.report import render
from loadtest.results import UNANSWERED_ERROR, LoadResult
from loadtest.step_result import _answering_at_end
from loadtest.triton_metrics import scrape
from serving.server import TritonServer

# the server hangs this long after Triton counted LOAD_FLOWING answers of the run (its warm-ups over, the window
# open): a fixed 4 s into the run hung it, on a CI machine whose other processes took 91 % of the cores, before
# Locust's users had connected, and every request failed to connect instead of waiting unanswered
LOAD_FLOWING = 20
HANG_AFTER_S = 1.0


@pytest.fixture(scope="module")
def hangable(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """A server of its own (no other test's server is stopped) and the data to load it with."""
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("hung"))
    return triton_server_factory(repo), data


def _load_while_hung(server: TritonServer, data: Path, pattern: LoadPattern, workers: int, out: Path) -> LoadResult:
    """Load `server` with `pattern`; stop its process once the load flows (HANG_AFTER_S after LOAD_FLOWING
    answers) and let it go once the run is over."""
    settings = LoadSettings(
        server.grpc_url, "mlp", data, pattern, duration_s=8.0, workers=workers, metrics_url=server.metrics_url
    )
    runs: list[LoadRun] = []
    before = _successes(server)
    load = threading.Thread(target=lambda: runs.append(run_pattern(settings, out)))
    load.start()
    _wait_for_answers(server, before + LOAD_FLOWING)
    time.sleep(HANG_AFTER_S)
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


def _successes(server: TritonServer) -> float:
    return float(scrape(server.metrics_url).get("mlp", {}).get("nv_inference_request_success", 0.0))


def _wait_for_answers(server: TritonServer, count: float, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _successes(server) < count:
        assert time.monotonic() < deadline, f"the load got no {LOAD_FLOWING} answers in {timeout_s:g} s"
        time.sleep(0.1)


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
    # longer than any answered request took (on a busy machine the workers may start so late that none was)
    assert result.latency.count == 0 or result.unanswered_max_ms > result.latency.max_ms
    # the silent seconds are an outage: no success in them, the unanswered requests counted at the window's end
    worst = max(result.outages, key=lambda o: o.duration_s)
    assert worst.duration_s >= 3.0 and worst.end_s == pytest.approx(result.window_s, abs=0.01)
    # the counters could not be read at the end: server-side figures left out, and said why
    assert result.server is None and "not reachable" in (result.metrics_missing or "")
    markdown = render(tmp_path)[0].read_text()
    assert "- Unanswered: " in markdown and "- Counters: " in markdown


def test_a_request_cut_by_the_stop_is_not_a_failure() -> None:
    """Requests in flight at the end that waited less than the floor, or than twice the slowest answered one took,
    are ordinary."""
    answered = np.zeros((3, recording_files.SAMPLE_COLUMNS))
    answered[:, 1], answered[:, 2] = [5.0, 1800.0, 7.0], 1.0  # the slowest answered request took 1.8 s
    waiting = np.array([[3.0, 1.0], [recording_files.UNANSWERED_FLOOR_MS - 1, 1.0], [2500.0, 1.0], [4000.0, 4.0]])
    rows = recording_files.unanswered_rows(answered, waiting, end=100.0)
    assert rows[:, 1].tolist() == [4000.0] and rows[:, 0].tolist() == [100.0] and rows[:, 5].tolist() == [4.0]
    assert rows[:, 2].tolist() == [0.0]  # failed
    # answered requests, then these overdue: failed even though the server still answers liveness checks
    assert len(recording_files.unanswered_rows(answered, waiting, end=100.0, server_answering=True)) == 1
    nothing_answered = recording_files.unanswered_rows(answered[:0], waiting, end=100.0)
    assert len(nothing_answered) == 2  # the floor alone, and the server did not answer at the end


def test_a_model_slower_than_the_window_is_still_in_flight_not_failed(tmp_path: Path) -> None:
    """Nothing answered yet and the server answering at the end: a 5–7 s model under a 4 s window, not a hang."""
    nothing = np.zeros((0, recording_files.SAMPLE_COLUMNS))
    waiting = np.array([[4000.0, 64.0], [200.0, 64.0]])
    assert len(recording_files.unanswered_rows(nothing, waiting, end=100.0, server_answering=True)) == 0
    assert recording_files.still_in_flight(nothing, waiting, server_answering=True).tolist() == [4000.0]
    assert len(recording_files.still_in_flight(nothing, waiting, server_answering=False)) == 0
    result = LoadResult.from_dict(
        {**_empty_result(), "in_flight_at_end": 1, "in_flight_max_ms": 4000.0, "model": "cnn", "users": 1}
    )
    assert result.notes() == [
        "cnn @ 1 users: 1 request still in flight at the end, waited 4.0 s: the model answers slower than the "
        "window; lengthen --duration"
    ]
    LoadRun("cnn", [result]).save(tmp_path)
    assert "- In flight: cnn @ 1 users: 1 request still in flight" in render(tmp_path)[0].read_text()


def test_a_server_that_does_not_answer_at_the_end_is_not_answering(free_port_factory: Callable[[], int]) -> None:
    """The evidence for a hang: the end-of-run scrape got nothing, or (no metrics) a liveness probe got nothing."""
    nothing = np.zeros((0, recording_files.SAMPLE_COLUMNS))
    waiting = np.array([[4000.0, 1.0]])
    url = f"127.0.0.1:{free_port_factory()}"  # nothing listens there
    window = recording_files.Window(0.0, 4.0, {}, None, ("127.0.0.1:1/metrics not reachable",))
    with_metrics = LoadSettings(url, "m", Path("d.npz"), metrics_url="127.0.0.1:1")
    assert not _answering_at_end(with_metrics, window, nothing, waiting)
    assert not _answering_at_end(LoadSettings(url, "m", Path("d.npz")), window, nothing, waiting)
    answered_scrape = recording_files.Window(0.0, 4.0, {}, {})
    assert _answering_at_end(with_metrics, answered_scrape, nothing, waiting)


def _empty_result() -> dict:
    from loadtest.percentiles import LatencySummary

    latency = LatencySummary.from_samples(np.zeros(0))
    return {
        "model": "m",
        "url": "127.0.0.1:1",
        "mode": "closed",
        "users": 1,
        "window_s": 4.0,
        "requests": 0,
        "failed_requests": 0,
        "throughput_rps": 0.0,
        "inferences_per_s": 0.0,
        "latency": dataclasses.asdict(latency),
    }


def test_unanswered_waits_are_measured_to_the_window_end(tmp_path: Path) -> None:
    """A Locust process notes each request's wait when its user stops (after the window's end): the wait counted is
    the one at the end; a request sent after the end is not counted."""
    # (stop wall time, ms waited at the stop, samples): sent at 90 s, at 99 s, and at 101 s (after the end)
    np.save(tmp_path / "unanswered-1.npy", np.array([[102.0, 12000.0, 1.0], [102.0, 3000.0, 2.0], [102.0, 500, 1.0]]))
    waits = recording_files.read_unanswered(tmp_path, end=100.0)
    np.testing.assert_allclose(waits, [[10000.0, 1.0], [1000.0, 2.0]])


def test_a_metrics_endpoint_that_never_answers_does_not_stop_a_workers_run(
    triton_server_factory: Callable[..., TritonServer], tmp_path: Path
) -> None:
    """The master opened the window inside the handler of the last warm-up's message, and its first scrape of a
    silent metrics endpoint (a hung tritonserver's) held Locust's message loop 5 s: no heartbeat read, both workers
    marked missing, the test stopped before the window opened and the master never quit ("locust did not finish
    within 79 s", no result). The window now opens in a greenlet of its own."""
    # a server of its own: the module's was stopped and continued by the tests above, and Triton 2.51 once died of a
    # segfault after that (CI, session 31: every request of this run refused), which is not what this test is about
    repo, data = models.own_mlp_repo(tmp_path / "repo")
    server = triton_server_factory(repo)
    with socket.socket() as listener:  # accepts connections, never answers: a stopped server's metrics port
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        metrics = f"127.0.0.1:{listener.getsockname()[1]}"
        # an open loop: its warm-ups end after the spawn, so the last one's message opens the window (a closed
        # loop's, answered before its users all spawned, opened it from the spawn: it passed before the fix)
        pattern = OpenLoop(rate=20.0)
        settings = LoadSettings(server.grpc_url, "mlp", data, pattern, duration_s=3.0, workers=2, metrics_url=metrics)
        result = run_pattern(settings, tmp_path).results[0]
    print(f"\n{result.label}: {result.requests} requests", *result.notes(), sep="\n")
    assert result.requests > 0 and result.failed_requests == 0 and not result.lost_workers
    assert result.server is None and "not reachable" in (result.metrics_missing or "")
