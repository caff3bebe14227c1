"""Edges of a load step: a rate too low to send anything, a model that ran nothing, a dead port, a server stopped
under load, and open-loop arrivals still on their way when the window ended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from loadtest.load_pattern import ClosedLoop, OpenLoop, Sweep
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, Window, read_window
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.step_result import _result_of_window, _server_restarted
from loadtest.triton_metrics import ServerBreakdown
from quantserve.cli import main
from quantserve.cli.tables import print_load_table
from quantserve.errors import QuantserveError


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((4, 8), dtype=np.float32))
    return path


def test_a_rate_expecting_under_one_arrival_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    """--rate 0.1 for 3 s measured 0 requests and exited 0, saying nothing."""
    line = "--rate 0.1 over --duration 3s expects 0.3 requests, fewer than one: raise --rate or --duration"
    with pytest.raises(QuantserveError) as refused:
        LoadSettings("127.0.0.1:1", "m", data, OpenLoop(0.1), duration_s=3.0).check()
    assert str(refused.value) == line
    with pytest.raises(QuantserveError, match=r"--rate 0\.5 over"):
        LoadSettings("127.0.0.1:1", "m", data, Sweep.of_rates([50, 0.5]), duration_s=1.0).check()
    LoadSettings("127.0.0.1:1", "m", data, OpenLoop(0.5), duration_s=2.0).check()  # one arrival expected: runs
    out = tmp_path / "out"
    args = ["loadtest", "--url", "127.0.0.1:1", "--model", "m", "--data", str(data), "--out", str(out)]
    assert main([*args, "--rate", "0.1", "--duration", "3s"]) == 2
    assert line in capsys.readouterr().err and not out.exists()  # refused before any probe or file


def result_with_server(executions: int) -> LoadResult:
    latency = LatencySummary(0, *([float("nan")] * 7))
    server = ServerBreakdown(0, 0, 0, executions, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return LoadResult(
        "m", "h:1", "open", 1, 3.0, 0, 0, 0.0, 0.0, latency, rate_rps=0.5, arrivals="constant", server=server
    )


def test_a_model_that_ran_nothing_shows_no_batch_or_queue(tmp_path: Path) -> None:
    """No execution in the window: the table showed avg batch 0.00 and queue 0 µs, figures of nothing."""
    idle = result_with_server(executions=0)
    console = Console(width=160, record=True, force_terminal=False)
    print_load_table([idle], console)
    row = next(line for line in console.export_text().splitlines() if "m @ 0.5 req/s constant" in line)
    assert "0.00" not in row and row.count("–") >= 4  # p50, p99, avg batch, queue
    LoadRun("m", [idle]).save(tmp_path)
    markdown = render(tmp_path)[0].read_text()
    assert "| m @ 0.5 req/s constant | 0 | 0 | 0.0 | – | – | – | – | – | – | – | – | – |" in markdown
    assert result_with_server(executions=3).server_figures is not None


def test_a_dead_port_is_the_same_line_evaluate_gives(data: Path, tmp_path: Path, free_port_factory, capsys) -> None:
    url = f"127.0.0.1:{free_port_factory()}"
    args = ["loadtest", "--url", url, "--model", "m", "--data", str(data), "--out", str(tmp_path / "out")]
    assert main([*args, "--users", "1", "--duration", "2s", "--metrics-url", url]) == 2
    err = capsys.readouterr().err
    assert f"no Triton server answers at {url}" in err and "repository index" not in err and "StatusCode" not in err


def test_a_server_stopped_under_load_is_said_stopped_not_restarted() -> None:
    window = Window(0.0, 10.0, None, None)
    stopped = result_with_server(executions=0)
    stopped.server_restarted = _server_restarted(4242, None, window, "m")
    assert (stopped.restart_note() or "").startswith(
        "m @ 0.5 req/s constant: tritonserver stopped during the measured window (pid 4242 listened on its port at the "
        "start, no process at the end)"
    )
    stopped.server_restarted = _server_restarted(4242, 4343, window, "m")
    assert "tritonserver restarted during the measured window (pid 4242" in (stopped.restart_note() or "")


def test_open_loop_arrivals_on_their_way_at_the_end_are_counted(tmp_path: Path, data: Path) -> None:
    """The probe's bursty trace: 1,022 offered, 960 answered, 0 unsent, 0 in flight at the end: 62 nowhere."""
    record = tmp_path / "raw"
    record.mkdir()
    start, end = 1_000.0, 1_010.0
    (record / WINDOW_FILE).write_text(json.dumps({"start": start, "end": end}))
    answered = np.zeros((960, SAMPLE_COLUMNS))
    answered[:, 0], answered[:, 1], answered[:, 2] = np.linspace(start + 0.9, end - 0.1, 960), 800.0, 1.0
    np.save(record / "latencies-1.npy", answered)
    on_their_way = np.column_stack([np.full(62, end + 0.05), np.linspace(50.0, 900.0, 62), np.ones(62)])
    np.save(record / "unanswered-1.npy", on_their_way)  # sent within the last second, slower ones took 800 ms
    step = OpenLoop(100.0)
    settings = LoadSettings("127.0.0.1:1", "m", data, step, duration_s=10.0)
    result = _result_of_window(settings, step, record, read_window(record), tmp_path / "locust" / "none")
    assert (result.offered_requests, result.requests, result.unsent, result.in_flight_at_end) == (1022, 960, 0, 0)
    assert result.cut_at_end == 62
    assert result.offered_requests == result.requests + result.unsent + result.in_flight_at_end + result.cut_at_end
    result.unsent, result.offered_requests = 40, 1062
    note = "offered 1062 requests, 960 answered, 62 on their way at the end, 40 never sent"
    assert note in (result.unsent_note() or "")


def test_a_request_batch_over_grpcs_2_gib_limit_is_refused_before_locust_starts(tmp_path: Path) -> None:
    rows = np.broadcast_to(np.zeros(1, np.float32), (4, 3, 1024, 1024))  # 12.6 MB a row
    np.savez(tmp_path / "big.npz", image=rows)
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "big.npz", ClosedLoop(1), duration_s=1.0, request_batch=200)
    with pytest.raises(QuantserveError) as refused:
        settings.check()
    assert str(refused.value).endswith("over gRPC's 2 GiB message limit; pass --request-batch 170 or less")
