"""A load test killed before it wrote its results: the report says so and shows what its raw records measured,
marked INCOMPLETE and never judged.

`kill -9` of `quantserve loadtest` left `raw/<step>/latencies-*.npy` and `window.json` (its Locust process, told its
parent died, closed the window), and `quantserve report` exited 2 with "run loadtest or evaluate first".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import psutil
import pytest

from loadtest.load_run import LoadRun
from quantserve.cli import main
from serving.server import TritonServer

SERVED_BEFORE_KILL = 200  # requests the server answered in the run before the test kills it


def _raw_step(folder: Path, start: float, end: float, ends: list[float], ok: list[int]) -> Path:
    """What a Locust process leaves in raw/<step>: its window and its exact latencies."""
    folder.mkdir(parents=True)
    (folder / "window.json").write_text(json.dumps({"start": start, "end": end}))
    rows = np.zeros((len(ends), 8))
    rows[:, 0], rows[:, 1], rows[:, 2] = ends, 2.0, ok
    np.save(folder / "latencies-1.npy", rows)
    return folder


def test_a_results_file_of_an_older_run_does_not_hide_newer_records(tmp_path: Path) -> None:
    """A later run into the folder, killed, rewrote raw/m-u2 (a 3 s window) beside the 5 s one a results file
    holds: the saved figures are the older run's, the newer records are reported apart, INCOMPLETE."""
    from loadtest.percentiles import LatencySummary
    from loadtest.results import LoadResult

    saved = LoadResult("m", "u", "closed", 2, 5.0, 4, 0, 0.8, 0.8, LatencySummary.from_samples([1.0] * 4))
    saved.locust_csv_prefix = "locust/m-u2"
    LoadRun("m", [saved]).save(tmp_path)
    _raw_step(tmp_path / "raw" / "m-u2", 100.0, 103.0, [100.5, 101.0, 102.0, 104.0], [1, 1, 0, 1])
    assert main(["report", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "m-u2 (INCOMPLETE: did not finish) | 3 | 1 | 0.7 | 2.00 |" in report  # the one ending after the window: out
    assert "did not finish" in report and "3.0 s measured window" in report


def test_records_of_a_saved_run_are_not_called_unfinished(tmp_path: Path) -> None:
    from loadtest.percentiles import LatencySummary
    from loadtest.results import LoadResult

    saved = LoadResult("m", "u", "closed", 2, 3.0, 3, 0, 1.0, 1.0, LatencySummary.from_samples([2.0] * 3))
    saved.locust_csv_prefix = "locust/m-u2"
    LoadRun("m", [saved]).save(tmp_path)
    _raw_step(tmp_path / "raw" / "m-u2", 100.0, 103.0, [100.5, 101.0, 102.0], [1, 1, 1])
    (tmp_path / "soak-s.json").write_text(json.dumps({"model": "s", "users": 4, "duration_s": 2.0}))
    _raw_step(tmp_path / "raw" / "s-u4", 10.0, 12.0, [11.0], [1])  # a finished soak's records
    assert main(["report", str(tmp_path)]) == 0
    assert "INCOMPLETE" not in (tmp_path / "report.md").read_text()


def test_a_run_killed_before_its_window_closed_is_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "raw" / "m-u8").mkdir(parents=True)
    (tmp_path / "raw" / "m-u8" / "locust.log").write_text("")
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "raw/m-u8: a load test that did not finish: quantserve loadtest stopped before it wrote" in error
    assert "not both a measured window and its latencies" in error and "evaluate first" not in error


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("killed"))
    return triton_server_factory(repo), data  # free ports on 127.0.0.1


def _served(metrics_url: str) -> float:
    from loadtest.triton_metrics import scrape

    return float(scrape(metrics_url).get("mlp", {}).get("nv_inference_request_success", 0.0))


def test_a_killed_loadtest_is_reported_incomplete(
    served_mlp: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While it runs, the report refuses the folder (a run is writing it); after `kill -9`, it renders what the raw
    records hold, marked INCOMPLETE, and says what is missing."""
    server, data = served_mlp
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "quantserve", "-q", "loadtest", "--url", server.grpc_url, "--model", "mlp"]
    argv += ["--data", str(data), "--users", "2", "--duration", "60s", "--out", str(out)]
    before = _served(server.metrics_url)
    loadtest = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30.0
        while _served(server.metrics_url) - before < SERVED_BEFORE_KILL:
            assert loadtest.poll() is None and time.monotonic() < deadline, loadtest.stderr
            time.sleep(0.1)
        assert main(["report", str(out)]) == 2
        assert f"a load run (pid {loadtest.pid}) is still writing its results here" in capsys.readouterr().err
        locusts = psutil.Process(loadtest.pid).children(recursive=True)
        loadtest.send_signal(signal.SIGKILL)
        loadtest.wait(10)
        psutil.wait_procs(locusts, timeout=20)  # told their parent died, they close the window and save
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
            loadtest.wait()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "INCOMPLETE: " in printed and "a load test that did not finish" in printed
    assert "missing: the CPU/GPU samples" in printed
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| mlp-u2 (INCOMPLETE: did not finish) |"))
    requests, failed = (int(cell) for cell in row.split("|")[2:4])
    assert requests >= SERVED_BEFORE_KILL and failed == 0, row
    assert "INCOMPLETE" in (out / "report.html").read_text()
