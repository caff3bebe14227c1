"""tritonserver restarted between two models' runs (or two steps of a sweep), and the run after the restart failed with
an error (not an interrupt) before it saved its results: the restart's note was lost with the run, kept only where
the run was interrupted (session 59). Now it is saved with what the run measured, as an interrupt saves it, and the
report says it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from restarted_server import ServerOf, load_argv, restarted_run

import loadtest.harness
import loadtest.soak
import quantserve.cli.commands.loadtest as loadtest_command
from loadtest.report import render
from quantserve.errors import QuantserveError

FAILURE = "Locust failed: a worker ended without figures (test)"


def _fail_call(monkeypatch: pytest.MonkeyPatch, failing: int, module: Any = loadtest.harness) -> None:
    """`run_step`'s call number `failing` (in `module`) fails with an error, the others run."""
    original, calls = module.run_step, []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == failing:
            raise QuantserveError(FAILURE)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "run_step", failing_once)


@pytest.mark.e2e
@pytest.mark.parametrize("sweep", [False, True], ids=["first-step", "second-step"])
def test_the_restart_note_between_models_is_kept_when_the_next_run_fails(
    sweep: bool,
    serve_supervised_mlp: ServerOf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    _fail_call(monkeypatch, 4 if sweep else 2)  # b's u2 (after a's u1, u2 and b's u1), or b's only step
    argv = load_argv(server, data, out, "a,b", *(["--sweep", "1,2"] if sweep else []))
    assert restarted_run(monkeypatch, loadtest_command, "run_with_progress", server, argv) == 2
    assert FAILURE in capsys.readouterr().err
    saved = json.loads((out / "load-b.json").read_text())
    restart = f"the server restarted between models' runs (pid {killed} → pid {server.pid})"
    assert FAILURE in saved["interrupted"]["note"]
    if sweep:  # on the step that finished, which measured the new server
        assert saved["results"][0]["warm_up"]["restarted_between_steps"].startswith(restart)
        assert saved["interrupted"]["step"] == "u2" and saved["results"][0]["requests"] > 0
    else:
        assert saved["results"] == [] and restart in saved["interrupted"]["note"]
    render(out)  # `quantserve report`: the run's own report was never written
    assert restart in (out / "report.md").read_text()


@pytest.mark.e2e
def test_the_restart_note_between_steps_is_kept_when_the_next_step_fails(
    serve_supervised_mlp: ServerOf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, data = serve_supervised_mlp(("mlp",))
    killed, out = server.pid, tmp_path / "out"
    _fail_call(monkeypatch, 2)
    argv = load_argv(server, data, out, "mlp", "--sweep", "1,2,3")
    assert restarted_run(monkeypatch, loadtest.harness, "run_step", server, argv) == 2, capsys.readouterr().err
    saved = json.loads((out / "load-mlp.json").read_text())
    restart = f"the server restarted between steps (pid {killed} → pid {server.pid})"
    assert [r["users"] for r in saved["results"]] == [1] and saved["interrupted"]["step"] == "u2"
    assert FAILURE in saved["interrupted"]["note"] and restart in saved["interrupted"]["note"]
    render(out)
    assert restart in (out / "report.md").read_text()


@pytest.mark.e2e
def test_the_restart_note_between_soaks_is_kept_when_the_next_soak_fails(
    serve_supervised_mlp: ServerOf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, data = serve_supervised_mlp(("a", "b"))
    killed, out = server.pid, tmp_path / "out"
    _fail_call(monkeypatch, 2, loadtest.soak)
    argv = load_argv(server, data, out, "a,b", window=("--soak", "3s"))
    assert restarted_run(monkeypatch, loadtest.soak, "run_soak", server, argv) == 2
    assert FAILURE in capsys.readouterr().err
    saved = json.loads((out / "load-b.json").read_text())  # where a soak stopped early saves its load
    restart = f"the server restarted between models' soaks (pid {killed} → pid {server.pid})"
    assert saved["results"] == [] and FAILURE in saved["interrupted"]["note"]
    assert restart in saved["interrupted"]["note"]
