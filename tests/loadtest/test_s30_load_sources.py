"""Load-shape values from the environment or a config file (session 30, issue 11), no Locust run here: a value the
run's load shape cannot use is refused where the command line typed it, and left unused with one note naming it where
the environment or a config file set it (defaults for other runs: command line > environment > config file):
- QUANTSERVE_SPAWN_RATE (or a config file's spawn_rate) beside --stages, --rate or --trace was refused;
- a config file's duration beside --soak was refused;
- `--users 8` typed while QUANTSERVE_USERS=8 was read as the environment's, and left unused beside --shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadtest.harness as harness
import loadtest.soak as soak
from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the refusals stops at the server check
NO_SERVER = f"quantserve: error: no Triton server answers at {DEAD_URL}\n"
SHAPE = """
from locust import LoadTestShape


class StepShape(LoadTestShape):
    def tick(self):
        return (1, 10) if self.get_run_time() < 2 else None
"""


def _argv(tmp_path: Path) -> list[str]:
    """A loadtest of model m with a small data file into a fresh --out, against a dead port."""
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    out = ["--out", str(tmp_path / "out"), "--model", "m"]
    return ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, "--data", str(data), *out]


def _config(tmp_path: Path, table: str) -> list[str]:
    config = tmp_path / "q.toml"
    config.write_text(f"[loadtest]\n{table}\n")
    return ["--config", str(config)]


@pytest.mark.parametrize("shape", [["--stages", "2:5s"], ["--rate", "5"], ["--trace", "TRACE"]])
def test_a_spawn_rate_from_the_environment_or_a_config_file_is_left_unused_by_stages_a_rate_or_a_trace(
    shape: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "gaps.txt"
    trace.write_text("100000\n" * 20)  # 20 arrivals 0.1 s apart
    flag, value = shape[0], shape[1].replace("TRACE", str(trace))
    argv = [*_argv(tmp_path), flag, value]
    why = {"--stages": "sets its own users and run time", "--rate": "runs an open loop (a list of rates sweeps)"}
    why["--trace"] = "replays the file's own arrivals"
    assert cli.main([*argv, "--spawn-rate", "2"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {flag} {why[flag]}; drop --spawn-rate (it ramps a closed loop's users: --users or "
        "--sweep)\n"
    )
    monkeypatch.setenv("QUANTSERVE_SPAWN_RATE", "2")
    assert cli.main(argv) == 2  # past the load flags, on to the server check
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    assert printed.out.splitlines()[0] == f"note: QUANTSERVE_SPAWN_RATE=2 is not used: {flag} {why[flag]}"
    monkeypatch.delenv("QUANTSERVE_SPAWN_RATE")
    assert cli.main([*_config(tmp_path, "spawn_rate = 2.5"), *argv]) == 2
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    note = f"note: {tmp_path / 'q.toml'}: [loadtest] spawn_rate = 2.5 is not used: {flag} {why[flag]}"
    assert printed.out.splitlines()[0] == note


def test_a_duration_from_a_config_file_or_the_environment_is_left_unused_by_a_soak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak sets its own length: a typed --duration is refused; a config file's or the environment's is said
    unused, and the soak runs for its own length (the server check and the soak itself stand in)."""
    monkeypatch.setattr(harness, "check_ready", lambda settings: [])
    soaked: list[float] = []

    def fake_soak(settings: Any, out: Any, server_pid: Any = None, restarted: Any = None) -> Any:
        soaked.append(settings.duration_s)
        return soak.SoakResult("m", 10.0, 4, 10, 0, 1.0, 1.0, 0.0, 0.0, 20.0, True, 1.0, 1.0, 0.0)

    monkeypatch.setattr(soak, "run_soak", fake_soak)
    argv = [*_argv(tmp_path), "--users", "4", "--soak", "10s"]
    assert cli.main([*argv, "--duration", "30s"]) == 2
    assert capsys.readouterr().err == (
        "quantserve: error: --soak runs one closed loop of --users for its own length; drop --duration\n"
    )
    why = "is not used: --soak runs one closed loop of --users for its own length"
    assert cli.main([*_config(tmp_path, 'duration = "30s"'), *argv]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f'note: {tmp_path / "q.toml"}: [loadtest] duration = "30s" {why}'
    monkeypatch.setenv("QUANTSERVE_DURATION", "30s")
    monkeypatch.setenv("QUANTSERVE_SWEEP", "1,2")
    argv[argv.index("--out") + 1] = str(tmp_path / "out2")
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"note: QUANTSERVE_SWEEP=1,2 {why}",
        f"note: QUANTSERVE_DURATION=30s {why}",
    ]
    assert soaked == [10.0, 10.0]


def test_users_typed_on_the_command_line_are_the_command_lines_though_the_environment_sets_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--users 8` with QUANTSERVE_USERS=8 was read as the environment's: left unused beside --shape, not refused."""
    shape = tmp_path / "shape.py"
    shape.write_text(SHAPE)
    monkeypatch.setenv("QUANTSERVE_USERS", "8")
    assert cli.main([*_argv(tmp_path), "--shape", str(shape), "--users", "8"]) == 2
    assert capsys.readouterr().err == "quantserve: error: --shape sets its own users (its tick()); drop --users\n"
    assert cli.main([*_argv(tmp_path), "--shape", str(shape), "--user", "8"]) == 2  # as argparse takes it: abridged
    assert capsys.readouterr().err == "quantserve: error: --shape sets its own users (its tick()); drop --users\n"
