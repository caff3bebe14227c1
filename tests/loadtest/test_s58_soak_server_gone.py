"""tritonserver gone BETWEEN two models' soaks of one `loadtest --soak 3s --model a,b`: the next soak's start exited 2
with "no Triton server answers", the finished soak not named. Now, as between two models' runs (`ModelsInTurn`), the
next soak waits for the server to come back (its notes say it restarted, pid A → B), or the line names the finished
soak's file; exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restarted_server import ServerOf, kill_after_first_call, load_argv, restarted_run

import loadtest.server_back
import loadtest.soak
from quantserve.cli import main
from serving.server import TritonServer


def _argv(server: TritonServer, data: Path, out: Path) -> list[str]:
    return load_argv(server, data, out, "a,b", window=("--soak", "3s"))


@pytest.mark.e2e
def test_the_next_soak_waits_for_the_server_serve_restarts(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    status = restarted_run(monkeypatch, loadtest.soak, "run_soak", server, _argv(server, data, out))
    printed = capsys.readouterr()
    assert status in (0, 1), printed.err  # a 3 s soak's memory verdict is not this test's
    first = json.loads((out / "soak-a.json").read_text())
    assert first["requests"] > 0 and not any("restarted between" in note for note in first["notes"])
    second = json.loads((out / "soak-b.json").read_text())
    said = next(note for note in second["notes"] if "restarted between" in note)
    assert said.startswith(
        f"b: the server restarted between models' soaks (pid {killed} → pid {server.pid}): it stopped answering "
        "after model 'a''s soak"
    ), said
    assert said.endswith("before this soak started; this soak measured the new one"), said
    assert second["failed_requests"] == 0 and second["requests"] > 0 and second["server_restarted"] is None
    assert "note: b: the server restarted between models' soaks" in printed.out


@pytest.mark.e2e
def test_a_server_that_does_not_come_back_keeps_the_finished_soak(
    serve_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_mlp(("a", "b"))
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 2.0)
    kill_after_first_call(monkeypatch, loadtest.soak, "run_soak", server, restart_after_s=None)
    out = tmp_path / "out"
    assert main(_argv(server, data, out)) == 1
    assert json.loads((out / "soak-a.json").read_text())["requests"] > 0
    assert not (out / "soak-b.json").exists() and not (out / "load-b.json").exists()
    err = capsys.readouterr().err
    assert f"the server at {server.grpc_url} stopped answering before model 'b''s soak (2 of 2)" in err
    assert "in the 2 s waited (no `quantserve serve` restarts it here)" in err
    assert err.rstrip().endswith(f"model 'a''s soak is saved in {out / 'soak-a.json'}"), err
