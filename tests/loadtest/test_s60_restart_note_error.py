"""tritonserver restarted between two models' runs (or two steps of a sweep), and the run after the restart failed with
an error (not an interrupt) before it saved its results: the restart's note was lost with the run, kept only where
the run was interrupted (session 59). Now it is saved with what the run measured, as an interrupt saves it, and the
report says it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from restarted_server import ServerOf, load_argv, restarted_run

import loadtest.harness
import loadtest.soak
import quantserve.cli.commands.loadtest as loadtest_command
from loadtest.report import render
from quantserve.errors import QuantserveError
from serving.server import TritonServer

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


@dataclass(frozen=True)
class FailingRun:
    """A served test MLP whose load run fails with FAILURE after the restart: the server, its load data, the pid
    killed before the restart and the results folder."""

    server: TritonServer
    data: Path
    killed: int | None
    out: Path

    def saved(self, model: str) -> dict[str, Any]:
        """`model`'s load as the run saved it."""
        return json.loads((self.out / f"load-{model}.json").read_text())  # type: ignore[no-any-return]


FailingRunOf = Callable[..., FailingRun]  # (model names, the failing call, its module) → the run's server and folder


@pytest.fixture
def failing_run(serve_supervised_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FailingRunOf:
    """Called with the model names and which `run_step` call fails (and in which module, `_fail_call`)."""

    def serve(names: tuple[str, ...], failing: int, module: Any = loadtest.harness) -> FailingRun:
        server, data = serve_supervised_mlp(names)
        _fail_call(monkeypatch, failing, module)
        return FailingRun(server, data, server.pid, tmp_path / "out")

    return serve


@pytest.mark.e2e
@pytest.mark.parametrize("sweep", [False, True], ids=["first-step", "second-step"])
def test_the_restart_note_between_models_is_kept_when_the_next_run_fails(
    sweep: bool, failing_run: FailingRunOf, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = failing_run(("a", "b"), 4 if sweep else 2)  # b's u2 (after a's u1, u2 and b's u1), or b's only step
    argv = load_argv(run.server, run.data, run.out, "a,b", *(["--sweep", "1,2"] if sweep else []))
    assert restarted_run(monkeypatch, loadtest_command, "run_with_progress", run.server, argv) == 2
    assert FAILURE in capsys.readouterr().err
    saved = run.saved("b")
    restart = f"the server restarted between models' runs (pid {run.killed} → pid {run.server.pid})"
    assert FAILURE in saved["interrupted"]["note"]
    if sweep:  # on the step that finished, which measured the new server
        assert saved["results"][0]["warm_up"]["restarted_between_steps"].startswith(restart)
        assert saved["interrupted"]["step"] == "u2" and saved["results"][0]["requests"] > 0
    else:
        assert saved["results"] == [] and restart in saved["interrupted"]["note"]
    render(run.out)  # `quantserve report`: the run's own report was never written
    assert restart in (run.out / "report.md").read_text()


@pytest.mark.e2e
def test_the_restart_note_between_steps_is_kept_when_the_next_step_fails(
    failing_run: FailingRunOf, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = failing_run(("mlp",), 2)
    argv = load_argv(run.server, run.data, run.out, "mlp", "--sweep", "1,2,3")
    assert restarted_run(monkeypatch, loadtest.harness, "run_step", run.server, argv) == 2, capsys.readouterr().err
    saved = run.saved("mlp")
    restart = f"the server restarted between steps (pid {run.killed} → pid {run.server.pid})"
    assert [r["users"] for r in saved["results"]] == [1] and saved["interrupted"]["step"] == "u2"
    assert FAILURE in saved["interrupted"]["note"] and restart in saved["interrupted"]["note"]
    render(run.out)
    assert restart in (run.out / "report.md").read_text()


@pytest.mark.e2e
def test_the_restart_note_between_soaks_is_kept_when_the_next_soak_fails(
    failing_run: FailingRunOf, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = failing_run(("a", "b"), 2, loadtest.soak)
    argv = load_argv(run.server, run.data, run.out, "a,b", window=("--soak", "3s"))
    assert restarted_run(monkeypatch, loadtest.soak, "run_soak", run.server, argv) == 2
    assert FAILURE in capsys.readouterr().err
    saved = run.saved("b")  # where a soak stopped early saves its load
    restart = f"the server restarted between models' soaks (pid {run.killed} → pid {run.server.pid})"
    assert saved["results"] == [] and FAILURE in saved["interrupted"]["note"]
    assert restart in saved["interrupted"]["note"]
