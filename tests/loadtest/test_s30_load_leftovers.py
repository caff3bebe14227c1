"""Load-test leftovers of issue 11 (session 30), each refused or said before any load, no Locust run here:
- the --workers note (Locust processes vs cores) came once per step of a sweep, from os.cpu_count(): now once a run,
  from the cores this process may use (its affinity);
- a second run of one model into one --out replaced the first's load-NAME.json in silence: refused, as two runs at
  once into one --out are, naming the file and the way out;
- `--soak` with a sampled --data printed no sample note, where a plain run does;
- QUANTSERVE_USERS (or a config file's users) refused every --shape run: a default for other runs, now unused, said.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadtest.harness as harness
import loadtest.soak as soak
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.request_data import MAX_REQUESTS, sample_note
from loadtest.results import LoadResult
from loadtest.utilization import Utilization
from quantserve import cli
from quantserve.cli.commands import loadtest as loadtest_command

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the refusals stops at the server check
NO_SERVER = f"no Triton server answers at {DEAD_URL}"
SHAPE = """
from locust import LoadTestShape


class StepShape(LoadTestShape):
    def tick(self):
        return (1, 10) if self.get_run_time() < 2 else None
"""


def _argv(tmp_path: Path, out: Path) -> list[str]:
    """A loadtest of a small data file into `out`, against a dead port."""
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    return ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, "--data", str(data), "--out", str(out)]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.removeprefix("quantserve: error: ").rstrip("\n")


def _step(users: int, workers: int, cores: int = 64) -> LoadResult:
    """A closed-loop step run with `workers` Locust workers, its machine recorded with `cores` (os.cpu_count)."""
    latency = LatencySummary.from_samples(np.full(500, 5.0))
    result = LoadResult("m", DEAD_URL, "closed", users, 5.0, 500, 0, 100.0, 100.0, latency, workers=workers)
    result.utilization = Utilization("psutil", "psutil", cpu_count=cores)
    return result


def test_no_step_carries_the_workers_note() -> None:
    assert not [note for note in _step(8, 5, cores=2).notes() if "Locust processes" in note]


def test_a_sweep_says_the_workers_note_once_from_the_cores_this_process_may_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three steps of --workers 5 in a process allowed 2 of the machine's 64 cores: one note, "on 2 cores"."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(harness, "check_ready", lambda settings: [])

    def measured(settings: Any, args: Any, **_: Any) -> LoadRun:
        run = LoadRun(settings.label, [_step(step.users, settings.workers) for step in settings.pattern.steps()])
        run.save(Path(args.out))
        return run

    monkeypatch.setattr(loadtest_command, "run_with_progress", measured)
    out = tmp_path / "out"
    assert cli.main([*_argv(tmp_path, out), "--model", "m", "--sweep", "1,2,4", "--workers", "5"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "Locust processes" in line]
    assert said == [
        "note: --workers 5 on 2 cores: the client's 6 Locust processes (master and workers) share the cores, and may "
        "bound the load they offer; use at most --workers 2, or run the client on another machine"
    ]


def test_a_second_run_of_one_model_into_one_out_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "load-m.json"
    earlier.write_text("the first run\n")
    assert cli.main([*_argv(tmp_path, out), "--model", "m", "--duration", "1s"]) == 2
    assert _error(capsys) == (
        f"{earlier}: an earlier run of 'm' is saved here; give this run another --out, or remove that file to "
        "measure it again in its place"
    )
    assert earlier.read_text() == "the first run\n" and sorted(p.name for p in out.iterdir()) == ["load-m.json"]
    assert cli.main([*_argv(tmp_path, out), "--model", "m", "--rate", "5", "--duration", "1s"]) == 2
    assert _error(capsys) == NO_SERVER, "an open-loop run of m is saved as load-m-open.json: nothing to replace"
    assert cli.main([*_argv(tmp_path, tmp_path / "new"), "--model", "m,m", "--duration", "1s"]) == 2
    assert _error(capsys) == "--model names 'm' twice: its second run would replace the first's load-m.json"


def test_a_second_soak_of_one_model_into_one_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "soak-m.json").write_text("{}\n")
    assert cli.main([*_argv(tmp_path, out), "--model", "m", "--soak", "10s"]) == 2
    assert _error(capsys).startswith(f"{out / 'soak-m.json'}: an earlier run of 'm' is saved here; ")


def test_a_soak_says_the_sample_of_a_large_data_file_as_a_plain_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's part of the check stands in (its note is `sample_note` of the file's rows); the soak itself too."""
    rows = 4 * MAX_REQUESTS
    ready = lambda settings, requests: [sample_note(settings.data, rows, requests[0])]  # noqa: E731
    monkeypatch.setattr(harness, "check_model_ready", ready)
    soaked: list[str] = []

    def fake_soak(settings: Any, out: Any, server_pid: Any = None, restarted: Any = None) -> Any:
        soaked.append(settings.label)
        return soak.SoakResult("m", 10.0, 4, 10, 0, 1.0, 1.0, 0.0, 0.0, 20.0, True, 1.0, 1.0, 0.0)

    monkeypatch.setattr(soak, "run_soak", fake_soak)
    assert cli.main([*_argv(tmp_path, tmp_path / "out"), "--model", "m", "--users", "4", "--soak", "10s"]) == 0
    note = sample_note(tmp_path / "d.npz", rows, [1])
    assert note is not None and soaked == ["m"]
    assert capsys.readouterr().out.splitlines()[0] == f"note: {note}"


def test_users_from_the_environment_or_a_config_file_are_left_unused_by_a_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line's --users is refused beside --shape; QUANTSERVE_USERS or `users` in a config file is a
    default for other runs (command line > environment > config file): said unused, the shape runs."""
    shape = tmp_path / "shape.py"
    shape.write_text(SHAPE)
    argv = [*_argv(tmp_path, tmp_path / "out"), "--model", "m", "--shape", str(shape)]
    monkeypatch.setenv("QUANTSERVE_USERS", "8")
    assert cli.main([*argv, "--users", "3"]) == 2
    assert _error(capsys) == "--shape sets its own users (its tick()); drop --users"
    config = tmp_path / "q.toml"
    config.write_text("[loadtest]\nusers = 4\nspawn_rate = 2.5\n")
    assert cli.main(["--config", str(config), *argv]) == 2  # past the shape, on to the server check
    printed = capsys.readouterr()
    assert printed.err == f"quantserve: error: {NO_SERVER}\n"
    unused = "is not used: --shape sets its own users (its tick())"
    assert printed.out.splitlines()[:2] == [
        f"note: QUANTSERVE_USERS=8 {unused}",
        f"note: {config}: [loadtest] spawn_rate = 2.5 {unused}",
    ]
