"""The CLI around a real tritonserver on non-default ports: the metrics port found or a hint, and --json output."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.endpoints import ServedEndpoints, recorded

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    monkeypatch.setenv("QUANTSERVE_LOG_DIR", str(tmp_path / "log"))
    return tmp_path / "run"


def _loadtest(served_models, out: Path, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    argv = [
        "loadtest",
        "--url",
        served_models.url,
        "--model",
        served_models.int8,
        "--data",
        str(served_models.load_data),
    ]
    return [*argv, "--users", "4", "--duration", "2s", "--request-batch", "2", "--out", str(out), *extra]


def _avg_batch_cell(printed: str) -> str:
    """At 80 columns one load step is printed sideways: a row per figure, `│ avg batch │ 3.52 │`."""
    assert "@ 4 users" in printed
    return re.search(r"│ avg batch\s*│\s*(\S+)\s*│", printed).group(1)  # type: ignore[union-attr]


def test_without_metrics_the_server_columns_are_dashes_and_one_hint_names_the_flag(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_loadtest(served_models, tmp_path / "r")) == 0
    printed = capsys.readouterr().out
    assert _avg_batch_cell(printed) == "–" and "nan" not in printed
    hints = [line for line in printed.splitlines() if "--metrics-url" in line]
    assert len(hints) == 1 and served_models.url in hints[0]


def test_the_metrics_port_serve_recorded_is_found_by_the_grpc_url(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, grpc = served_models.url.rsplit(":", 1)
    metrics = int(re.search(r":(\d+)/metrics", served_models.metrics_url).group(1))  # type: ignore[union-attr]
    with recorded(ServedEndpoints(os.getpid(), "repo", host, int(grpc), 0, metrics)):
        assert main(_loadtest(served_models, tmp_path / "r")) == 0
    printed = capsys.readouterr().out
    assert float(_avg_batch_cell(printed)) >= 1.0
    assert "--metrics-url" not in printed


def test_json_prints_one_document_and_nothing_else(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_loadtest(served_models, tmp_path / "r", "--json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["runs"][0]["model"] == served_models.int8 and document["runs"][0]["results"][0]["requests"] > 0
    argv = ["evaluate", "--url", served_models.url, "--models", f"{served_models.fp32},{served_models.int8}"]
    argv += ["--reference", served_models.fp32, "--data", str(served_models.heldout), "--out", str(tmp_path / "e")]
    assert main([*argv, "--json"]) == 0
    accuracy = json.loads(capsys.readouterr().out)
    assert [v["model"] for v in accuracy["accuracy"]["variants"]] == [served_models.fp32, served_models.int8]
    infer = ["infer", "--url", served_models.url, "--model", served_models.int8, "--data", str(served_models.heldout)]
    assert main([*infer, "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert len(outputs["argmax"]) == 1000 and 0.0 <= outputs["accuracy"] <= 1.0


def test_locust_dies_with_a_killed_loadtest(served_models, tmp_path: Path) -> None:
    """SIGKILL of `quantserve loadtest` left its Locust master and workers loading the server until their run
    time ran out (an hour under --soak 1h)."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    argv = _loadtest(served_models, tmp_path / "r")
    argv[argv.index("--duration") + 1] = "60s"
    command = [sys.executable, "-m", "quantserve", *argv, "--workers", "2"]
    loadtest = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while len(family) < 3 and time.monotonic() < deadline:  # the master and its two workers
            family = [p for p in psutil.Process(loadtest.pid).children() if "locust" in " ".join(p.cmdline())]
            time.sleep(0.2)
        assert len(family) == 3, "locust master and workers never started"
        loadtest.send_signal(signal.SIGKILL)
        loadtest.wait(timeout=10)
        _gone, alive = psutil.wait_procs(family, timeout=20)
        assert not alive, f"outlived loadtest: {[p.pid for p in alive]}"
    finally:
        loadtest.kill()
        for process in family:
            if process.is_running():
                process.kill()


def test_a_model_not_ready_among_several_is_refused_before_any_run(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--model ready,absent` ran the first model's whole step, then stopped on the second with no report."""
    argv = _loadtest(served_models, tmp_path / "r")
    argv[argv.index("--model") + 1] = f"{served_models.int8},absent"
    assert main(argv) == 2
    assert "model 'absent' is not ready on" in capsys.readouterr().err
    assert not list((tmp_path / "r").glob("load-*.json")) and not (tmp_path / "r" / "raw").exists()
