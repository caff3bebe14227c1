"""Every open-loop user's schedule starts at the measured window's start, in one process and across workers (probe
round 3, fault 5).

Each user started its schedule at its own spawn, before the window opened (one process: while the window's first
metrics scrape ran; `--workers`: 0.17 s before the master opened it): a bursty trace at 360× with `--duration 10s`
planned "the 10 s played offer 100 arrivals" and measured 258 requests, 58 of them arrived before the window.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.arrival_trace import read_trace
from loadtest.harness import run_pattern
from loadtest.load_pattern import TraceReplay
from loadtest.load_settings import LoadSettings
from loadtest.trace_plan import played_line
from serving.server import TritonServer

WINDOW_S = 3.0
BURST = 30  # arrivals 1 ms apart, at the trace's t=0 and near the window's end


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("anchor"))
    return triton_server_factory(repo), data


@pytest.fixture(scope="module")
def edge_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A burst at t=0, one at 2.6 s, and an arrival at 8 s, which keeps the next pass far beyond the window."""
    burst = np.arange(BURST) * 0.001
    stamps = np.concatenate([burst, 2.6 + burst, [8.0]])
    path = tmp_path_factory.mktemp("trace") / "edges.csv"
    path.write_text("timestamp\n" + "".join(f"{t:.4f}\n" for t in stamps))
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
def test_the_window_offers_the_arrivals_its_plan_counts(
    served_mlp: tuple[TritonServer, Path], edge_trace: Path, workers: int, tmp_path: Path
) -> None:
    """The plan's count is what the window offers, both bursts whole, and no request arrived before it opened."""
    server, data = served_mlp
    trace = read_trace(edge_trace)
    planned = trace.arrivals_within(WINDOW_S)
    assert planned == 2 * BURST and played_line(trace, WINDOW_S) == (
        f"the 3 s played offer {planned} arrivals, 20 req/s, not the pass's mean 7.5 req/s: the run replays part "
        "of a pass"
    )
    pattern = TraceReplay(str(edge_trace))
    settings = LoadSettings(
        server.grpc_url, "mlp", data, pattern, duration_s=WINDOW_S, workers=workers, metrics_url=server.metrics_url
    )
    (result,) = run_pattern(settings, tmp_path).results
    print(f"\n{result.label}: offered {result.offered_requests} of {planned}, {result.requests} answered")
    assert result.arrived_before_window == 0, f"{result.arrived_before_window} requests arrived before the window"
    assert result.offered_requests == planned and result.requests == planned, (result.offered_requests, planned)
    assert result.failed_requests == 0 and result.unsent == 0


LATE_USER = textwrap.dedent(
    """
    import time

    from loadtest import recording

    recording._origin.set(time.time() - 0.5)  # the window opened half a second before this user started
    before = time.perf_counter()
    start = recording.schedule_start()
    late = before - start
    print(late)
    assert 0.5 - recording.SCHEDULE_LEAD_S <= late <= 0.5 - recording.SCHEDULE_LEAD_S + 0.05, late
    """
)


def test_a_user_started_after_the_window_opened_starts_its_schedule_at_the_windows_start() -> None:
    """Its arrivals already due are due now, late (send lag), not shifted: the trace's t=0 stays the window's start.
    In a child process: importing `recording` imports Locust, which patches this one's threads."""
    child = subprocess.run([sys.executable, "-c", LATE_USER], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
