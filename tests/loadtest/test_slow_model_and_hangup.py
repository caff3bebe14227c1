"""Against a real tritonserver: a model slower than the request deadline or the load window, and a loadtest whose
terminal hangs up.

`evaluate` against a model slower than its per-request deadline said only "Deadline Exceeded" after 32 s: it now
names the limit, the model and the request, and `--request-timeout` raises it. A `loadtest` in whose window no
request completed reported 0 requests and exited 0. SIGHUP (the terminal closed) killed a `loadtest` before it
saved anything; it now keeps what was measured, as SIGTERM does.
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
import psutil
import pytest

from loadtest.load_run import LoadRun
from quantserve.cli import main
from serving.server import TritonServer

ROOT = Path(__file__).resolve().parents[2]
SLEEP_S = 4.0  # each batch of the slow model
SERVED_BEFORE_HANGUP = 100
FAIL_AFTER_S = 1.5


@pytest.fixture(scope="module")
def slow_and_fast(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """A server of its own with `mlp` and `mlp_slow` (the same model, its Python backend sleeping SLEEP_S a batch)."""
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("slow"), ("mlp", "mlp_slow", "dead_fp32", "mlp_int8"), 32)
    _first_in_execute(repo / "mlp_slow", f"import time; time.sleep({SLEEP_S})")
    # a backend that fails every batch after FAIL_AFTER_S (the probe's killed stub answered "not healthy" after ~2 s)
    _first_in_execute(repo / "dead_fp32", f"import time; time.sleep({FAIL_AFTER_S}); raise RuntimeError('dead')")
    # stopped at the end with requests still queued at its slow models, Triton waits them out: its graceful stop
    # held each module's teardown the whole 20 s before the SIGKILL; nothing here tests that stop
    return triton_server_factory(repo, stop_timeout_s=3.0), data


def _first_in_execute(model_dir: Path, line: str) -> None:
    """Put `line` first in the deployed Python backend's `execute`."""
    model_py = model_dir / "1" / "model.py"
    head = "    def execute(self, requests: list[Any]) -> list[Any]:\n"
    text = model_py.read_text()
    assert head in text
    model_py.write_text(text.replace(head, f"{head}        {line}\n"))


@pytest.mark.e2e
def test_evaluate_names_the_request_deadline_and_takes_another(
    slow_and_fast: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = slow_and_fast
    argv = ["evaluate", "--url", server.grpc_url, "--models", "mlp_slow", "--reference", "mlp_slow"]
    argv += ["--data", str(data), "--out", str(tmp_path / "r"), "--batch-size", "32", "--no-budget"]
    started = time.monotonic()
    assert main([*argv, "--request-timeout", "1"]) == 2
    assert time.monotonic() - started < 20
    assert capsys.readouterr().err == (
        f"quantserve: error: {server.grpc_url}: model 'mlp_slow' did not answer a request of 32 samples (rows 1–32 of "
        "64) within 1 s, the limit per request (--request-timeout, default 30): raise --request-timeout, or send "
        "fewer samples a request (--batch-size)\n"
    )


@pytest.mark.e2e
def test_a_loadtest_in_which_no_request_completed_exits_1(
    slow_and_fast: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = slow_and_fast
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp_slow", "--data", str(data)]
    argv += ["--metrics-url", server.metrics_url, "--users", "1", "--duration", "2s", "--out", str(tmp_path)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "mlp_slow @ 1 users: no request completed in its " in captured.err, captured
    assert "window, nothing was measured" in captured.err
    assert LoadRun.load(tmp_path / "load-mlp_slow.json").results[0].requests == 0


@pytest.mark.e2e
def test_a_reference_whose_every_request_failed_fails_the_verdict(
    slow_and_fast: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe: FP32's backend dead, INT8 serving; the verdict said "PASS · INT8 nan× FP32 served" and the note
    blamed a slow model for the requests still waiting on the dead one."""
    server, data = slow_and_fast
    argv = ["loadtest", "--url", server.grpc_url, "--model", "dead_fp32,mlp_int8", "--data", str(data)]
    argv += ["--metrics-url", server.metrics_url, "--users", "2", "--duration", "4s", "--out", str(tmp_path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "slower than the window" not in out, out
    assert main(["report", str(tmp_path)]) == 1  # a FAIL verdict gates a script
    headline = capsys.readouterr().out.splitlines()[-1]
    assert headline.startswith("FAIL · served INT8 vs FP32 not comparable: dead_fp32 served nothing at 2 users"), (
        headline
    )
    report = (tmp_path / "report.md").read_text()
    assert "- dead_fp32 @ 2 users: " in report and " requests failed" in report.split("- dead_fp32 @ 2 users: ")[1]


def _served(metrics_url: str, model: str) -> float:
    from loadtest.triton_metrics import scrape

    return float(scrape(metrics_url).get(model, {}).get("nv_inference_request_success", 0.0))


@pytest.mark.e2e
def test_sighup_saves_what_the_loadtest_measured_like_sigterm(
    slow_and_fast: tuple[TritonServer, Path], tmp_path: Path
) -> None:
    server, data = slow_and_fast
    out = tmp_path / "r"
    argv = [sys.executable, "-m", "quantserve", "-q", "loadtest", "--url", server.grpc_url, "--model", "mlp"]
    argv += ["--data", str(data), "--out", str(out), "--metrics-url", server.metrics_url, "--users", "4"]
    loadtest = subprocess.Popen(
        [*argv, "--duration", "30s"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        before = _served(server.metrics_url, "mlp")
        deadline = time.monotonic() + 30
        while _served(server.metrics_url, "mlp") - before < SERVED_BEFORE_HANGUP:
            assert loadtest.poll() is None and time.monotonic() < deadline, loadtest.communicate()
            time.sleep(0.1)
        children = psutil.Process(loadtest.pid).children(recursive=True)
        loadtest.send_signal(signal.SIGHUP)
        _, err = loadtest.communicate(timeout=25)
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert loadtest.returncode == 130, err
    assert "partial results saved in" in err, err
    saved = json.loads((out / "load-mlp.json").read_text())
    assert saved["interrupted"]["partial_step_saved"], saved["interrupted"]
    [step] = saved["results"]
    assert step["interrupted"] and step["requests"] > 0 and step["planned_window_s"] == 30.0
    assert (out / "report.html").is_file()


def test_sighup_is_an_interrupt_inside_loadtest_and_evaluate_and_restored_after() -> None:
    import os

    from loadtest.interruption import hangup_as_interrupt

    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(KeyboardInterrupt), hangup_as_interrupt():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(5)  # the handler raises at once
    assert signal.getsignal(signal.SIGHUP) is before
