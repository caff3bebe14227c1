"""Locust's run time is whole seconds: a fractional --duration, --soak or --load-duration is refused up front in
quantserve's own line (Locust's usage text came after a run began, and after evaluate saved accuracy.json); so is a
stage of 2.5 s (`test_flags_up_front`). A step repeated in --sweep or --rate is refused: its files would overwrite
the first's."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_flags import (
    parse_concurrencies,
    parse_duration,
    parse_rates,
    parse_stages,
    soak_from_flags,
)
from loadtest.load_pattern import ClosedLoop
from quantserve import cli
from quantserve.errors import QuantserveError


def test_a_fractional_duration_is_refused_naming_the_next_whole_second() -> None:
    with pytest.raises(QuantserveError) as raised:
        parse_duration("2.5s")
    assert str(raised.value) == "--duration 2.5s: Locust runs whole seconds; use 3s"
    with pytest.raises(QuantserveError, match=r"^--soak 2\.5s: Locust runs whole seconds; use 3s$"):
        soak_from_flags("2.5s", 4, None, {})
    assert parse_duration("1m30s") == 90


def test_a_stage_lasts_whole_seconds() -> None:
    """The staged shape changes users once a second: a 2.5 s stage ran 3 s (and 0.5 s stages not at all)."""
    assert parse_stages("2:2s,4:1s") == ((2, 2.0), (4, 1.0))
    with pytest.raises(QuantserveError, match=r"^--stages 2:2\.5s: the staged shape changes users once a second"):
        parse_stages("2:2.5s,4:1s")


def test_locust_run_time_is_written_in_whole_seconds() -> None:
    flags = ClosedLoop(2).locust_run_flags(0, 1_000_000.0)
    assert flags[flags.index("--window-time") + 1] == "1000000" and "-t" not in flags  # -t counts the ramp in
    with pytest.raises(QuantserveError, match="Locust runs whole seconds"):
        ClosedLoop(2).locust_run_flags(0, 2.5)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--duration", "2.5s"], "--duration 2.5s: Locust runs whole seconds; use 3s"),
        (["--soak", "2.5s"], "--soak 2.5s: Locust runs whole seconds; use 3s"),
        (["--sweep", "2,2"], "--sweep '2,2' repeats 2: each step's files are named by its value; give each once"),
        (["--rate", "5,5.0,7"], "--rate '5,5.0,7' repeats 5: each step's files are named by its value; give each once"),
    ],
)
def test_loadtest_refuses_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], line: str
) -> None:
    out = tmp_path / "out"
    argv = [
        "loadtest",
        "--url",
        "127.0.0.1:18399",
        "--model",
        "m",
        "--data",
        str(tmp_path / "d.npz"),
        "--out",
        str(out),
    ]
    assert run_cli([*argv, *flags], capsys) == f"quantserve: error: {line}\n"
    assert not out.exists()


def test_evaluate_refuses_a_fractional_load_duration_before_the_accuracy_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [
        "evaluate",
        "--url",
        "127.0.0.1:18399",
        "--models",
        "a",
        "--reference",
        "a",
        "--data",
        str(tmp_path / "d.npz"),
    ]
    err = run_cli([*argv, "--out", str(out), "--load-duration", "2.5s"], capsys)
    assert err == "quantserve: error: --load-duration 2.5s: Locust runs whole seconds; use 3s\n"
    assert not out.exists()


def test_repeated_steps_are_refused() -> None:
    with pytest.raises(QuantserveError, match=r"^--sweep '1,2,1,2' repeats 1, 2: "):
        parse_concurrencies("1,2,1,2")
    assert parse_concurrencies("1,2,4") == [1, 2, 4]
    assert parse_rates("50,100") == [50.0, 100.0]
