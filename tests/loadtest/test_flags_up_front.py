"""Load flags Locust could not honour are refused up front in quantserve's own line, before any file or probe: a
stage shorter than a second or of a fractional second (the staged shape's `tick` runs once a second: 0.5 s stages
were dropped and the report claimed their users), and a spawn rate that is not a finite number above 0 (NaN ended
in Locust's usage error after the start, 0 meant "all at once" in silence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_flags import parse_stages
from loadtest.load_pattern import ClosedLoop, Staged
from quantserve import cli
from quantserve.errors import QuantserveError


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("1:0.5s,32:0.5s,1:0.5s", "--stages 1:0.5s: the staged shape changes users once a second; use 1:1s"),
        ("2:2.5s,4:1s", "--stages 2:2.5s: the staged shape changes users once a second; use 2:3s"),
    ],
)
def test_a_stage_of_a_fraction_of_a_second_is_refused(text: str, line: str) -> None:
    with pytest.raises(QuantserveError) as raised:
        parse_stages(text)
    assert str(raised.value) == line
    with pytest.raises(QuantserveError, match="changes users once a second"):
        Staged(((4, 0.5),)).check()
    assert parse_stages("2:2s,4:1m") == ((2, 2.0), (4, 60.0))


def test_spawn_rates_that_are_not_finite_and_positive_are_refused() -> None:
    for rate in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(QuantserveError, match=r"^--spawn-rate must be positive and finite"):
            ClosedLoop(4, rate).check()
    ClosedLoop(4, 0.5).check()


STAGE_LINE = "--stages 1:0.5s: the staged shape changes users once a second; use 1:1s"
SPAWN_LINE = "--spawn-rate must be positive and finite (users started per second), got "
NO_RAMP = "drop --spawn-rate (it ramps a closed loop's users: --users or --sweep)"


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--stages", "1:0.5s,32:0.5s,1:0.5s"], STAGE_LINE),
        (["--spawn-rate", "nan"], f"{SPAWN_LINE}nan"),
        (["--spawn-rate", "0"], f"{SPAWN_LINE}0"),
        (["--spawn-rate", "-2", "--soak", "10s"], f"{SPAWN_LINE}-2"),
        # accepted and ignored: all 8 stage users started at once (pl5)
        (["--stages", "8:10s,2:5s", "--spawn-rate", "1"], f"--stages sets its own users and run time; {NO_RAMP}"),
        (["--rate", "20", "--spawn-rate", "0.5"], f"--rate runs an open loop (a list of rates sweeps); {NO_RAMP}"),
        (["--trace", "t.csv", "--spawn-rate", "2"], f"--trace replays the file's own arrivals; {NO_RAMP}"),
    ],
)
def test_loadtest_refuses_them_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], line: str
) -> None:
    out = tmp_path / "out"
    argv = ["loadtest", "--url", "127.0.0.1:18399", "--model", "m", "--data", str(tmp_path / "d.npz")]
    assert cli.main([*argv, "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"
    assert not out.exists()
