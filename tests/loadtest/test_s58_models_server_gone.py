"""tritonserver gone BETWEEN two models' runs of one `loadtest --model a,b`: the next model's start exited 2 with
"no Triton server answers", no report, the finished model's figures not named. Now, as between two steps of a
sweep (`server_back.wait_back`), the next run waits for the server to come back (its first step says it restarted,
pid A → B), or the finished run is rendered into the report and one line names it; exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restarted_server import ServerOf, kill_after_first_call, load_argv, restarted_run

import loadtest.harness
import loadtest.server_back
import quantserve.cli.commands.loadtest as loadtest_command
from quantserve.cli import main


@pytest.mark.e2e
def test_the_next_model_waits_for_the_server_serve_restarts(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    argv = load_argv(server, data, out, "a,b")
    assert restarted_run(monkeypatch, loadtest_command, "run_with_progress", server, argv) == 0
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
    serve_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_mlp(("a", "b"))
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 2.0)
    kill_after_first_call(monkeypatch, loadtest_command, "run_with_progress", server, restart_after_s=None)
    out = tmp_path / "out"
    assert main(load_argv(server, data, out, "a,b")) == 1
    saved = json.loads((out / "load-a.json").read_text())
    assert saved["results"][0]["requests"] > 0 and saved["interrupted"] is None
    assert not (out / "load-b.json").exists()
    assert (out / "report.html").is_file()
    err = capsys.readouterr().err
    assert f"the server at {server.grpc_url} stopped answering before model 'b''s run (2 of 2)" in err
    assert "in the 2 s waited (no `quantserve serve` restarts it here)" in err
    assert f"model 'a''s figures are saved in {out / 'load-a.json'} (report: {out / 'report.html'})" in err
