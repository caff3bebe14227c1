"""`--max-in-flight` in a closed loop (session 32, issue 11), no Locust run here: it caps an open loop's requests in
flight (`--rate`, `--trace`), and `quantserve loadtest --users 16 --max-in-flight 4` ran 16 users as if it had not been
given. Typed beside another load shape it is refused in one line, as `--arrivals` without --rate is; set by the
environment or a config file (a default for open-loop runs) it is left unused with a note (session 30's rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadtest.harness as harness
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from quantserve import cli
from quantserve.cli.commands import loadtest as loadtest_command

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the flags stops at the server check
NO_SERVER = f"quantserve: error: no Triton server answers at {DEAD_URL}\n"
WHY = "caps an open loop's requests in flight, and this run has no --rate or --trace"
SHAPE = """
from locust import LoadTestShape


class StepShape(LoadTestShape):
    def tick(self):
        return (1, 10) if self.get_run_time() < 2 else None
"""


def _argv(tmp_path: Path, *flags: str) -> list[str]:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    target = ["--url", DEAD_URL, "--metrics-url", DEAD_URL, "--model", "m", "--data", str(data)]
    return ["loadtest", *target, "--out", str(tmp_path / "out"), *flags]


@pytest.mark.parametrize(
    "flags",
    [[], ["--users", "4"], ["--sweep", "1,2"], ["--stages", "2:2s"], ["--soak", "10s"], ["--shape", "SHAPE"]],
)
def test_a_typed_max_in_flight_in_a_closed_loop_is_refused_in_one_line(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shape = tmp_path / "shape.py"
    shape.write_text(SHAPE)
    flags = [str(shape) if flag == "SHAPE" else flag for flag in flags]
    assert cli.main(_argv(tmp_path, *flags, "--max-in-flight", "4")) == 2
    assert capsys.readouterr().err == f"quantserve: error: --max-in-flight {WHY}; drop --max-in-flight\n"
    assert not (tmp_path / "out").exists()


def test_from_the_environment_or_a_config_file_it_is_left_unused_in_a_closed_loop_and_used_by_an_open_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_MAX_IN_FLIGHT", "8")
    for flags in ([], ["--soak", "10s"]):
        assert cli.main(_argv(tmp_path, *flags)) == 2
        printed = capsys.readouterr()
        assert printed.err == NO_SERVER
        assert printed.out.splitlines()[0] == f"note: QUANTSERVE_MAX_IN_FLIGHT=8 is not used: it {WHY}"
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp\n0\n0.1\n0.2\n")
    for flags in (["--rate", "5"], ["--trace", str(trace)]):  # the open loops use it: nothing said
        assert cli.main(_argv(tmp_path, *flags)) == 2
        printed = capsys.readouterr()
        assert printed.err == NO_SERVER and "not used" not in printed.out, flags
    monkeypatch.delenv("QUANTSERVE_MAX_IN_FLIGHT")
    config = tmp_path / "q.toml"
    config.write_text("[loadtest]\nmax_in_flight = 8\n")
    assert cli.main(["--config", str(config), *_argv(tmp_path, "--sweep", "1,2")]) == 2
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    assert printed.out.splitlines()[0] == f"note: {config}: [loadtest] max_in_flight = 8 is not used: it {WHY}"


@pytest.mark.parametrize(("flags", "sent"), [(["--rate", "5", "--max-in-flight", "4"], 4), (["--rate", "5"], 64)])
def test_an_open_loop_sends_with_the_max_in_flight_given_or_the_default(
    flags: list[str], sent: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "check_ready", lambda settings: [])
    seen: list[int] = []

    def measured(settings: Any, args: Any, **_: Any) -> LoadRun:
        seen.append(settings.max_in_flight)
        latency = LatencySummary.from_samples(np.full(500, 5.0))
        result = LoadResult("m", DEAD_URL, "open", 1, 5.0, 500, 0, 100.0, 100.0, latency)
        result.rate_rps, result.arrivals, result.max_in_flight = 5.0, "constant", settings.max_in_flight
        run = LoadRun(settings.label, [result])
        run.save(Path(args.out))
        return run

    monkeypatch.setattr(loadtest_command, "run_with_progress", measured)
    assert cli.main(_argv(tmp_path, *flags, "--duration", "2s", "--json")) == 0
    assert seen == [sent]
