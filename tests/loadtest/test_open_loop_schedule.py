"""The open loop's schedule against real Locust processes: ready before the measured window opens, and bounded
however far the server falls behind it.

A 2 M-row trace was parsed by each Locust user as it started, inside the measured window: 0 requests in a 20 s
window, exit 0 (a 600 k-row one: nothing for 5 s, then half the trace's rate). An overloaded open loop spawned a
greenlet and a gRPC client per waiting arrival: 625 MB after 15 s at 1500 req/s through 4 in-flight slots.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest import recording_files
from loadtest.harness import run_pattern
from loadtest.load_pattern import TraceReplay
from loadtest.load_settings import LoadSettings
from serving.server import TritonServer

TRACE_ROWS = 1_500_000  # ~11 s a million before, row by row; still over a second now, beyond a master's 1 s wait
TRACE_RATE = 50.0  # arrivals a second, evenly spaced


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("schedule"))
    return triton_server_factory(repo), data


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "long.csv"
    np.savetxt(path, np.arange(TRACE_ROWS) / TRACE_RATE, fmt="%.3f", header="timestamp", comments="")
    return path


@pytest.mark.serial  # it judges when the window opens against the parse: run alone (make test)
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
def test_a_long_trace_is_parsed_before_the_window_opens(
    served_mlp: tuple[TritonServer, Path], long_trace: Path, workers: int, tmp_path: Path
) -> None:
    """Every second of the window carries arrivals, and the arrivals offered are the ones the trace plans for it
    (those the client could not send on time are counted, not lost)."""
    server, data = served_mlp
    settings = LoadSettings(server.grpc_url, "mlp", data, TraceReplay(str(long_trace)), duration_s=3.0, workers=workers)
    (result,) = run_pattern(settings, tmp_path).results
    seconds = [s.ok + s.failed for s in result.timeline if s.width_s == 1.0]
    print(f"\n{result.label}: {seconds} requests a second, offered {result.offered_requests}", *result.notes())
    assert seconds and min(seconds) > 0, f"a second of the window without an arrival: {seconds}"
    planned = TRACE_RATE * result.window_s
    assert result.offered_requests is not None and result.offered_requests >= 0.85 * planned, (
        f"offered {result.offered_requests} of the {planned:.0f} arrivals the trace plans for the window"
    )


COUNTING_LOCUSTFILE = textwrap.dedent(
    """
    import json
    import os

    import gevent

    from loadtest import recording  # noqa: F401
    from loadtest.open_loop_user import OpenLoopTritonUser

    class CountingUser(OpenLoopTritonUser):
        def on_start(self):
            self.clients_built, self.peak_greenlets = 0, 0  # its warm-up builds the first client
            super().on_start()
            gevent.spawn(self._watch)

        def _watch(self):
            while True:
                self.peak_greenlets = max(self.peak_greenlets, len(self._in_flight))
                gevent.sleep(0.005)

        def _new_client(self):
            self.clients_built += 1
            return super()._new_client()

        def on_stop(self):
            counts = {"clients_built": self.clients_built, "peak_greenlets": self.peak_greenlets}
            with open(os.path.join(self.environment.parsed_options.record_dir, "counts.json"), "w") as out:
                json.dump(counts, out)
            super().on_stop()
    """
)


@pytest.mark.serial  # it judges the arrivals offered against the rate: run alone (make test)
def test_an_overloaded_open_loop_holds_at_most_max_in_flight_requests(silent_server: str, tmp_path: Path) -> None:
    """400 arrivals a second through 4 in-flight slots to a server that never answers: at most 4 clients and 4
    request greenlets, and every arrival the window planned is still offered (the unsent counted)."""
    locustfile = tmp_path / "locustfile_counting.py"
    locustfile.write_text(COUNTING_LOCUSTFILE)
    data = models.labeled_data(16, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    record = tmp_path / "raw"
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "1", "-r", "1"]
    command += ["--window-time", "3", "--stop-timeout", "0", "--only-summary", "--loglevel", "WARNING"]
    command += ["--triton-url", silent_server, "--triton-model", "m", "--triton-data", str(data)]
    # the silent server never answers: each call, the warm-up's too, ends at the 1 s deadline (gRPC's own connect
    # timeout, 20 s, ended the warm-up where the deadline was the option's default, 30 s)
    command += ["--rate", "400", "--max-in-flight", "4", "--request-timeout", "1", "--record-dir", str(record)]
    locust = subprocess.run(command, capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert (record / "counts.json").is_file(), locust.stderr[-3000:]
    counts = json.loads((record / "counts.json").read_text())
    print(f"\n{counts}")
    assert counts["clients_built"] <= 4 and counts["peak_greenlets"] <= 4, counts
    window = recording_files.read_window(record)
    answered = recording_files.read_latencies(record, window.start, window.end)
    offered = len(answered) + len(recording_files.read_unanswered(record, window.end))
    offered += recording_files.read_unsent(record, window.end)
    planned = 400 * (window.end - window.start)
    assert offered >= 0.8 * planned, f"offered {offered} of the {planned:.0f} arrivals planned for the window"


def test_a_window_held_by_a_slow_first_scrape_is_not_said_to_open_before_the_warm_up_ended(
    silent_server: str, tmp_path: Path
) -> None:
    """A hung server: the warm-up ends at the client's 1 s deadline, the window's first scrape of its silent metrics
    port takes 5 s, and the warm-up cap (2 s) fired meanwhile: it wrote "0 of 1 users' warm-up requests had not
    ended … the window opened anyway", where every warm-up had ended and the window was opening."""
    data = models.labeled_data(16, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    record = tmp_path / "raw"
    with socket.socket() as metrics:
        metrics.bind(("127.0.0.1", 0))
        metrics.listen(16)
        command = [sys.executable, "-m", "locust", "-f", "loadtest/locustfile_open_loop.py", "--headless", "-u", "1"]
        command += ["-r", "1", "--window-time", "1", "--stop-timeout", "0", "--only-summary", "--loglevel", "WARNING"]
        command += ["--triton-url", silent_server, "--triton-model", "m", "--triton-data", str(data), "--rate", "5"]
        command += ["--request-timeout", "1", "--metrics-url", f"127.0.0.1:{metrics.getsockname()[1]}"]
        command += ["--record-dir", str(record)]
        locust = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    window = json.loads((record / recording_files.WINDOW_FILE).read_text())
    warm_up = window["warm_up"]
    assert warm_up is not None, locust.stderr[-3000:]
    assert warm_up["requests"] == 1 and warm_up["failed"] == 1 and warm_up["unfinished"] is None, warm_up
