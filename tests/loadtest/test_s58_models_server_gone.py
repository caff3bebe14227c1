"""tritonserver gone BETWEEN two models' runs of one `loadtest --model a,b`: the next model's start exited 2 with
"no Triton server answers", no report, the finished model's figures not named. Now, as between two steps of a
sweep (`server_back.wait_back`), the next run waits for the server to come back (its first step says it restarted,
pid A → B), or the finished run is rendered into the report and one line names it; exit 1."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

import loadtest.harness
import loadtest.server_back
import quantserve.cli.commands.loadtest as loadtest_command
from quantserve.cli import main
from serving.endpoints import ServedEndpoints, write_record
from serving.server import TritonServer


def _argv(server: TritonServer, data: Path, out: Path) -> list[str]:
    argv = ["loadtest", "--url", server.grpc_url, "--model", "a,b", "--data", str(data), "--users", "1"]
    return [*argv, "--duration", "1s", "--metrics-url", server.metrics_url, "--out", str(out)]


@pytest.mark.e2e
def test_the_next_model_waits_for_the_server_serve_restarts(
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, data = models.own_mlp_repo(tmp_path / "models", ("a", "b"), 8)
    server = triton_server_factory(repo, stop_timeout_s=3.0)
    killed = server.pid
    port = int(server.grpc_url.rsplit(":", 1)[1])
    # this process restarts it, as `quantserve serve` does: its record says a supervisor runs (in a folder of this
    # test's own: its made-up HTTP and metrics ports would be another test's serve record)
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    write_record(ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", port, 1, 2))
    threads = models.kill_after_first_call(
        monkeypatch, loadtest_command, "run_with_progress", server, restart_after_s=2.0
    )
    out = tmp_path / "out"
    try:
        assert main(_argv(server, data, out)) == 0
    finally:
        for thread in threads:
            thread.join()
    first = json.loads((out / "load-a.json").read_text())["results"][0]
    assert first["requests"] > 0 and not (first["warm_up"] or {}).get("restarted_between_steps")
    second = json.loads((out / "load-b.json").read_text())["results"][0]
    said = second["warm_up"]["restarted_between_steps"]
    assert said.startswith(
        f"the server restarted between models' runs (pid {killed} → pid {server.pid}): it stopped answering after "
        "model 'a''s run"
    ), said
    assert second["failed_requests"] == 0 and second["requests"] > 0
    assert "the server restarted between models' runs" in capsys.readouterr().out


@pytest.mark.e2e
def test_a_server_that_does_not_come_back_keeps_the_finished_model(
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, data = models.own_mlp_repo(tmp_path / "models", ("a", "b"), 8)
    server = triton_server_factory(repo, stop_timeout_s=3.0)
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 2.0)
    models.kill_after_first_call(monkeypatch, loadtest_command, "run_with_progress", server, restart_after_s=None)
    out = tmp_path / "out"
    assert main(_argv(server, data, out)) == 1
    saved = json.loads((out / "load-a.json").read_text())
    assert saved["results"][0]["requests"] > 0 and saved["interrupted"] is None
    assert not (out / "load-b.json").exists()
    assert (out / "report.html").is_file()
    err = capsys.readouterr().err
    assert f"the server at {server.grpc_url} stopped answering before model 'b''s run (2 of 2)" in err
    assert "in the 2 s waited (no `quantserve serve` restarts it here)" in err
    assert f"model 'a''s figures are saved in {out / 'load-a.json'} (report: {out / 'report.html'})" in err
