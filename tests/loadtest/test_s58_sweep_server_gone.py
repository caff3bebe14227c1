"""tritonserver gone BETWEEN two steps of a sweep (probe 58T, item 1): loadtest exited 2 with "no Triton server answers"
0.9 s after the kill, the finished step never saved, though `serve` had it ready again 4 s later. Now the next step
waits for the server to come back (and says it restarted, pid A → B), or the finished steps are saved with the report
and the one line names the step it stopped before; exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restarted_server import ServerOf, kill_after_first_call, load_argv, restarted_run

import loadtest.harness
import loadtest.server_back
from quantserve.cli import main
from serving.server import TritonServer


def _argv(server: TritonServer, data: Path, out: Path) -> list[str]:
    return load_argv(server, data, out, "mlp", "--sweep", "1,2")


@pytest.mark.e2e
def test_the_next_step_waits_for_the_server_serve_restarts(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("mlp",))
    killed = server.pid
    assert restarted_run(monkeypatch, loadtest.harness, "run_step", server, _argv(server, data, tmp_path / "out")) == 0
    saved = json.loads((tmp_path / "out" / "load-mlp.json").read_text())
    assert [r["users"] for r in saved["results"]] == [1, 2] and saved["interrupted"] is None
    said = saved["results"][1]["warm_up"]["restarted_between_steps"]
    assert said.startswith(f"the server restarted between steps (pid {killed} → pid {server.pid}): it stopped")
    assert saved["results"][1]["failed_requests"] == 0
    printed = capsys.readouterr()
    assert "the server restarted between steps" in printed.out


@pytest.mark.e2e
def test_a_server_that_does_not_come_back_keeps_the_finished_steps(
    serve_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_mlp(("mlp",))
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 2.0)
    kill_after_first_call(monkeypatch, loadtest.harness, "run_step", server, restart_after_s=None)
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
