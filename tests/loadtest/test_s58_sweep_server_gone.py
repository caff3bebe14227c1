"""tritonserver gone BETWEEN two steps of a sweep (probe 58T, item 1): loadtest exited 2 with "no Triton server answers"
0.9 s after the kill, the finished step never saved, though `serve` had it ready again 4 s later. Now the next step
waits for the server to come back (and says it restarted, pid A → B), or the finished steps are saved with the report
and the one line names the step it stopped before; exit 1."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

import loadtest.harness
import loadtest.server_back
from quantserve.cli import main
from serving.endpoints import ServedEndpoints, write_record
from serving.server import TritonServer


def _argv(server: TritonServer, data: Path, out: Path) -> list[str]:
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--sweep", "1,2"]
    return [*argv, "--duration", "1s", "--metrics-url", server.metrics_url, "--out", str(out)]


@pytest.mark.e2e
def test_the_next_step_waits_for_the_server_serve_restarts(
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, data = models.own_mlp_repo(tmp_path / "models", ("mlp",), 8)
    server = triton_server_factory(repo, stop_timeout_s=3.0)
    killed = server.pid
    port = int(server.grpc_url.rsplit(":", 1)[1])
    # this process restarts it, as `quantserve serve` does: its record says a supervisor runs; in a runtime folder of
    # its own (its made-up HTTP port 1, left in the session's, failed later tests as another server's --metrics-url)
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    write_record(ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", port, 1, 2))
    threads = models.kill_after_first_call(monkeypatch, loadtest.harness, "run_step", server, restart_after_s=2.0)
    try:
        assert main(_argv(server, data, tmp_path / "out")) == 0
    finally:
        for thread in threads:
            thread.join()
    saved = json.loads((tmp_path / "out" / "load-mlp.json").read_text())
    assert [r["users"] for r in saved["results"]] == [1, 2] and saved["interrupted"] is None
    said = saved["results"][1]["warm_up"]["restarted_between_steps"]
    assert said.startswith(f"the server restarted between steps (pid {killed} → pid {server.pid}): it stopped")
    assert saved["results"][1]["failed_requests"] == 0
    printed = capsys.readouterr()
    assert "the server restarted between steps" in printed.out


@pytest.mark.e2e
def test_a_server_that_does_not_come_back_keeps_the_finished_steps(
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, data = models.own_mlp_repo(tmp_path / "models", ("mlp",), 8)
    server = triton_server_factory(repo, stop_timeout_s=3.0)
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 2.0)
    models.kill_after_first_call(monkeypatch, loadtest.harness, "run_step", server, restart_after_s=None)
    out = tmp_path / "out"
    assert main(_argv(server, data, out)) == 1
    saved = json.loads((out / "load-mlp.json").read_text())
    assert [r["users"] for r in saved["results"]] == [1] and saved["results"][0]["requests"] > 0
    assert saved["interrupted"]["completed_steps"] == 1 and saved["interrupted"]["step"] == "u2"
    assert (out / "report.html").is_file()
    report = (out / "report.md").read_text()
    assert "INCOMPLETE" not in report and "stopped answering before step 2 of 2 (u2)" in report
    err = capsys.readouterr().err
    assert f"the server at {server.grpc_url} stopped answering before step 2 of 2 (u2)" in err
    assert f"step 1's figures are saved in {out / 'load-mlp.json'} (report: {out / 'report.html'})" in err
