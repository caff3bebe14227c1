"""Flags the run's load shape cannot use (session 31, issue 11), no Locust run here: `--stages 4:3s --users 32` ran 4
users, `--rate 50 --users 32` an open loop, `--arrivals poisson` a closed loop and `--trace-speed 2` a closed loop,
each without a word. Typed on the command line they are refused in one line (as `--stages … --duration` is); set by
the environment or a config file (defaults for other runs) they are left unused with a note (session 30's rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the flags stops at the server check
NO_SERVER = f"quantserve: error: no Triton server answers at {DEAD_URL}\n"
ARRIVALS = "--arrivals sets the arrivals of --rate's open loop, and this run has no --rate"
SPEED = "--trace-speed sets the speed of --trace's replay, and this run has no --trace"
SCALE = "--trace-scale sets the share of --trace's arrivals replayed, and this run has no --trace"


def _argv(tmp_path: Path) -> list[str]:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    out = ["--out", str(tmp_path / "out"), "--model", "m", "--data", str(data)]
    return ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, *out]


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--stages", "4:3s", "--users", "32"], "--stages sets its own users and run time; drop --users"),
        (["--rate", "50", "--users", "32"], "--rate runs an open loop (a list of rates sweeps); drop --users"),
        (["--sweep", "1,2", "--users", "32"], "--sweep runs a closed-loop sweep; drop --users"),
        (["--arrivals", "poisson"], f"{ARRIVALS}; drop --arrivals"),
        (["--users", "4", "--arrivals", "constant"], f"{ARRIVALS}; drop --arrivals"),
        (["--soak", "10s", "--arrivals", "poisson"], f"{ARRIVALS}; drop --arrivals"),
        (["--trace-speed", "2"], f"{SPEED}; drop --trace-speed"),
        (["--rate", "5", "--trace-scale", "0.5"], f"{SCALE}; drop --trace-scale"),
    ],
)
def test_a_typed_flag_the_load_shape_cannot_use_is_refused_in_one_line(
    flags: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*_argv(tmp_path), *flags]) == 2
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"


def test_the_same_values_from_the_environment_or_a_config_file_are_left_unused_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_USERS", "32")
    monkeypatch.setenv("QUANTSERVE_ARRIVALS", "poisson")
    assert cli.main([*_argv(tmp_path), "--stages", "4:3s"]) == 2
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    assert printed.out.splitlines()[:2] == [
        "note: QUANTSERVE_USERS=32 is not used: --stages sets its own users and run time",
        f"note: QUANTSERVE_ARRIVALS=poisson is not used: it {ARRIVALS.removeprefix('--arrivals ')}",
    ]
    monkeypatch.delenv("QUANTSERVE_USERS")
    monkeypatch.delenv("QUANTSERVE_ARRIVALS")
    config = tmp_path / "q.toml"
    config.write_text('[loadtest]\ntrace_speed = 2\narrivals = "poisson"\n')
    assert cli.main(["--config", str(config), *_argv(tmp_path), "--rate", "5"]) == 2  # the rate uses arrivals
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    assert printed.out.splitlines() == [  # nothing said of the arrivals --rate uses
        f"note: {config}: [loadtest] trace_speed = 2.0 is not used: it {SPEED.removeprefix('--trace-speed ')}"
    ]
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp\n0\n0.1\n0.2\n")
    traced = ["--trace", str(trace), "--trace-speed", "2", "--trace-scale", "0.5"]
    for flags in (["--users", "4"], ["--rate", "5", "--arrivals", "poisson"], traced):  # each where its shape uses it
        assert cli.main([*_argv(tmp_path), *flags]) == 2
        assert capsys.readouterr().err == NO_SERVER, flags
