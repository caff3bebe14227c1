"""tritonserver restarted between two models' runs (or two steps of a sweep) under `--server-pid P`, P tritonserver
itself: the next run was refused as a stale pid ("--server-pid P: no such process", exit 2) though the server was
back and answering. Now it measures the server listening now and the restart's note says so once. And the restart's
note between models was saved only once the next model's run finished: that run interrupted, the note was lost; now
it is on the run as saved, whole or not."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from restarted_server import ServerOf, load_argv, restarted_run

import loadtest.harness
import loadtest.server_back
import loadtest.soak
import quantserve.cli.commands.loadtest as loadtest_command
from loadtest.interruption import StepInterrupted
from quantserve.cli import main
from serving.endpoints import record_path

RUNS = "run_with_progress"  # each model's run of `loadtest --model a,b`, killed after the first


@pytest.mark.e2e
def test_the_next_model_measures_the_restarted_server_its_pid_gone(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    argv = load_argv(server, data, out, "a,b", "--server-pid", str(killed))
    assert restarted_run(monkeypatch, loadtest_command, RUNS, server, argv) == 0, capsys.readouterr().err
    second = json.loads((out / "load-b.json").read_text())["results"][0]
    said = second["warm_up"]["restarted_between_steps"]
    assert f"--server-pid {killed} gone; measuring the server now listening (pid {server.pid})" in said, said
    assert said.count("--server-pid") == 1 and second["requests"] > 0
    assert second["utilization"]["process_rss_mb_max"]  # the new server's process sampled


@pytest.mark.e2e
def test_the_next_step_measures_the_restarted_server_its_pid_gone(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("mlp",))
    killed, out = server.pid, tmp_path / "out"
    argv = load_argv(server, data, out, "mlp", "--sweep", "1,2,3", "--server-pid", str(killed))
    assert restarted_run(monkeypatch, loadtest.harness, "run_step", server, argv) == 0, capsys.readouterr().err
    results = json.loads((out / "load-mlp.json").read_text())["results"]
    assert [r["users"] for r in results] == [1, 2, 3]
    said = results[1]["warm_up"]["restarted_between_steps"]
    assert f"--server-pid {killed} gone; measuring the server now listening (pid {server.pid})" in said, said
    assert not (results[2]["warm_up"] or {}).get("restarted_between_steps")  # said once; step 3 measured it too
    assert results[2]["utilization"]["process_rss_mb_max"]


@pytest.mark.e2e
def test_a_pid_that_never_was_the_server_is_still_refused(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    argv = load_argv(server, data, tmp_path / "out", "a,b", "--server-pid", "1")  # init, not this test (its parent)
    assert main(argv) == 2
    assert "--server-pid 1: process 1 (" in capsys.readouterr().err


def _interrupt_second_run(monkeypatch: pytest.MonkeyPatch, partial: bool) -> None:
    """`harness.run_step` stopped by Ctrl-C in the second model's run: its window cut short and kept (`partial`), or
    before its Locust run started (the step omitted)."""
    original, calls = loadtest.harness.run_step, []

    def stopping(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return original(*args, **kwargs)
        if not partial:
            raise KeyboardInterrupt
        result = original(*args, **kwargs)
        result.interrupted, result.planned_window_s = True, 2.0
        raise StepInterrupted(time.time(), result)

    monkeypatch.setattr(loadtest.harness, "run_step", stopping)


@pytest.mark.e2e
@pytest.mark.parametrize("partial", [True, False], ids=["partial-step", "step-omitted"])
def test_the_restart_note_is_kept_when_the_next_run_is_interrupted(
    serve_supervised_mlp: ServerOf,
    partial: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    _interrupt_second_run(monkeypatch, partial)
    argv = load_argv(server, data, out, "a,b")
    assert restarted_run(monkeypatch, loadtest_command, RUNS, server, argv) == 130
    saved = json.loads((out / "load-b.json").read_text())
    restart = f"the server restarted between models' runs (pid {killed} → pid {server.pid})"
    if partial:
        assert saved["results"][0]["warm_up"]["restarted_between_steps"].startswith(restart)
    else:
        assert saved["results"] == [] and restart in saved["interrupted"]["note"]
    assert restart in (out / "report.md").read_text()


@pytest.mark.e2e
def test_the_supervisors_pid_stays_through_the_restart(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    out = tmp_path / "out"  # this test's process is tritonserver's parent, as `quantserve serve` is
    argv = load_argv(server, data, out, "a,b", "--server-pid", str(os.getpid()))
    assert restarted_run(monkeypatch, loadtest_command, RUNS, server, argv) == 0, capsys.readouterr().err
    said = json.loads((out / "load-b.json").read_text())["results"][0]["warm_up"]["restarted_between_steps"]
    assert said.startswith("the server restarted between models' runs") and "--server-pid" not in said


@pytest.mark.e2e
def test_the_next_soak_measures_the_restarted_server_its_pid_gone(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    argv = load_argv(server, data, out, "a,b", "--server-pid", str(killed), window=("--soak", "3s"))
    status = restarted_run(monkeypatch, loadtest.soak, "run_soak", server, argv)
    assert status in (0, 1), capsys.readouterr().err  # 1: memory not judged flat in 3 s
    notes = json.loads((out / "soak-b.json").read_text())["notes"]
    said = f"--server-pid {killed} gone; measuring the server now listening (pid {server.pid})"
    assert any(said in note for note in notes), notes


@pytest.mark.e2e
def test_the_restart_note_is_kept_when_the_server_goes_during_the_next_run(
    serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    out, port = tmp_path / "out", int(server.grpc_url.rsplit(":", 1)[1])
    original, calls = loadtest.harness.run_step, []

    def gone_after_b_first_step(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # a's u1 and u2, b's u1: the server gone, and its serve with it
            server.stop(kill=True)
            record_path(port).unlink()
        return answer

    monkeypatch.setattr(loadtest.harness, "run_step", gone_after_b_first_step)
    monkeypatch.setattr(loadtest.server_back, "UNSUPERVISED_WAIT_S", 1.0)
    argv = load_argv(server, data, out, "a,b", "--sweep", "1,2")
    assert restarted_run(monkeypatch, loadtest_command, RUNS, server, argv) == 1
    saved = json.loads((out / "load-b.json").read_text())
    restart = "the server restarted between models' runs (pid "
    assert saved["results"][0]["warm_up"]["restarted_between_steps"].startswith(restart)
    assert saved["interrupted"]["step"] == "u2" and saved["results"][0]["requests"] > 0
    assert restart in (out / "report.md").read_text()
