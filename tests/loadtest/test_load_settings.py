"""Load patterns, settings checks and the Locust command lines, without starting anything."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from loadtest.harness import locust_command
from loadtest.load_flags import (
    parse_concurrencies,
    parse_duration,
    parse_rates,
    parse_stages,
    pattern_from_flags,
    soak_from_flags,
)
from loadtest.load_pattern import ClosedLoop, OpenLoop, Staged, Sweep
from loadtest.load_settings import LoadSettings
from quantserve.errors import QuantserveError


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("2m", 120), ("1h30m", 5400), ("90", 90)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(QuantserveError, match="duration"):
        parse_duration(text)


def test_parse_concurrencies() -> None:
    assert parse_concurrencies("1,2,4, 8") == [1, 2, 4, 8]
    with pytest.raises(QuantserveError, match="--sweep"):
        parse_concurrencies("1,x")
    with pytest.raises(QuantserveError, match="at least 1"):
        parse_concurrencies("0,1")


def test_parse_rates() -> None:
    assert parse_rates("50,100.5") == [50.0, 100.5]
    with pytest.raises(QuantserveError, match="--rate"):
        parse_rates("fast")
    with pytest.raises(QuantserveError, match="above 0"):
        parse_rates("0")
    for text in ("nan", "inf", "50,nan"):  # NaN passed `<= 0`: Locust then died with its own traceback
        with pytest.raises(QuantserveError, match=f"^--rate '{text}' needs finite rates above 0$"):
            parse_rates(text)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "in.npz"
    np.savez(path, x=np.zeros((4, 3), np.float32))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pattern": ClosedLoop(0)}, "--users must be at least 1, got 0"),
        ({"pattern": ClosedLoop(4, spawn_rate=0.0)}, "--spawn-rate must be positive"),
        ({"duration_s": 0}, "--duration must be positive"),
        ({"pattern": OpenLoop(-1.0)}, "--rate must be positive, got -1"),
        ({"pattern": OpenLoop(10.0, "bursty")}, "--arrivals must be constant or poisson, got 'bursty'"),
        ({"max_in_flight": 0}, "--max-in-flight must be at least 1, got 0"),
        ({"pattern": Sweep.of_users([1, 0])}, "--users must be at least 1, got 0"),
        ({"pattern": Sweep(())}, "a load sweep needs at least one step"),
        ({"pattern": Sweep((ClosedLoop(1), OpenLoop(5.0)))}, "all closed-loop steps or all open-loop steps"),
        ({"workers": -1}, "--workers must be 0 or more"),
        ({"request_batch": 0}, "--request-batch must be at least 1"),
        ({"pattern": Staged(())}, "--stages needs at least one"),
        ({"pattern": Staged(((4, 5.0), (0, 2.0)))}, "--stages: a stage needs users >= 1 and seconds > 0, got 0:2s"),
    ],
)
def test_bad_settings_are_one_clear_line(data: Path, change: dict, message: str) -> None:
    settings = LoadSettings("127.0.0.1:8001", "m", data, **change)
    with pytest.raises(QuantserveError, match=message):
        settings.check()


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="not found"):
        LoadSettings("127.0.0.1:8001", "m", tmp_path / "nope.npz").check()


@pytest.mark.parametrize(
    ("flags", "pattern"),
    [
        ({"users": 16}, ClosedLoop(16)),
        ({"users": 16, "spawn_rate": 4.0}, ClosedLoop(16, 4.0)),
        ({"users": 16, "sweep": "1,8"}, Sweep((ClosedLoop(1), ClosedLoop(8)))),
        ({"users": 16, "rate": "50"}, OpenLoop(50.0)),
        ({"users": 16, "stages": "4:20s,32:5s,4:20s"}, Staged(((4, 20), (32, 5), (4, 20)))),
        (
            {"users": 16, "rate": "40,120", "arrivals": "poisson"},
            Sweep((OpenLoop(40.0, "poisson"), OpenLoop(120.0, "poisson"))),
        ),
    ],
)
def test_cli_flags_become_one_pattern(flags: dict, pattern: object) -> None:
    """One load shape per run; --sweep overrides --users."""
    assert pattern_from_flags(**flags) == pattern


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"sweep": "1,8", "rate": "50"}, "--rate runs an open loop (a list of rates sweeps); drop --sweep"),
        ({"stages": "4:20s", "rate": "50"}, "--stages sets its own users and run time; drop --rate"),
        ({"stages": "4:20s", "sweep": "1,2"}, "--stages sets its own users and run time; drop --sweep"),
        (
            {"stages": "4:20s", "rate": "5", "sweep": "1"},
            "--stages sets its own users and run time; drop --rate and --sweep",
        ),
        ({"trace": "t.csv", "stages": "4:20s"}, "--trace replays the file's own arrivals; drop --stages"),
    ],
)
def test_two_load_shapes_are_refused_naming_both(flags: dict, message: str) -> None:
    """Before, all but one were dropped in silence (--stages 1:5s,2:5s --rate 50 ran staged only)."""
    with pytest.raises(QuantserveError, match=f"^{re.escape(message)}$"):
        pattern_from_flags(16, **flags)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "100"], "--soak runs one closed loop of --users for its own length; drop --rate"),
        (["--trace", "gaps.txt"], "--soak runs one closed loop of --users for its own length; drop --trace"),
        (["--stages", "1:5s,2:5s"], "--soak runs one closed loop of --users for its own length; drop --stages"),
        (["--sweep", "1,2"], "--soak runs one closed loop of --users for its own length; drop --sweep"),
        (["--duration", "30s"], "--soak runs one closed loop of --users for its own length; drop --duration"),
    ],
)
def test_soak_refuses_every_other_load_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """Before, `--soak 20s --rate 100` ran a closed loop of 16 users at ~500 req/s."""
    from quantserve.cli import main

    argv = ["loadtest", "--url", "127.0.0.1:1", "--model", "m", "--data", str(tmp_path / "in.npz")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--soak", "20s", *extra]) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("soak", "message"),
    [("0s", "--soak must be positive, got 0s"), ("soon", "--soak 'soon' is not like 10m, 1h or 90s")],
)
def test_soak_errors_name_soak(soak: str, message: str) -> None:
    """Before, `--soak 0s` was refused as `--duration must be positive`."""
    with pytest.raises(QuantserveError, match=f"^{re.escape(message)}$"):
        soak_from_flags(soak, 4, None, {})
    assert soak_from_flags("2m", 4, None, {"--rate": "", "--duration": ""}) == (ClosedLoop(4), 120.0)


def test_every_pattern_is_a_sequence_of_steps() -> None:
    assert ClosedLoop(4).steps() == (ClosedLoop(4),)
    assert OpenLoop(50.0).steps() == (OpenLoop(50.0),)
    assert [s.name for s in Sweep.of_users([1, 4]).steps()] == ["u1", "u4"]
    assert [s.name for s in Sweep.of_rates([50, 100.5], "poisson").steps()] == ["rate50-poisson", "rate100.5-poisson"]


def test_parse_stages() -> None:
    assert parse_stages("4:20s, 32:5,4:1m") == ((4, 20.0), (32, 5.0), (4, 60.0))
    for bad in ["", "4", "x:5s", "4:soon", "-1:5s"]:
        with pytest.raises(QuantserveError, match=r"--stages|duration"):
            parse_stages(bad)


def test_a_staged_step_lets_its_shape_drive_locust(data: Path, tmp_path: Path) -> None:
    spike = Staged(((4, 20), (32, 5), (4, 20)))
    assert spike.name == "staged-u4x20s-u32x5s-u4x20s" and spike.run_seconds(60.0) == 45.0
    assert spike.recorded(workers=0) == {"mode": "staged", "users": 32, "rate_rps": None, "arrivals": None}
    command = locust_command(LoadSettings("h:1", "m", data, spike, duration_s=60), spike, tmp_path, tmp_path / "csv")
    assert command[command.index("-f") + 1].endswith("locustfile_staged.py")
    assert command[command.index("--stages") + 1] == "4:20,32:5,4:20"
    # Locust ignores -u/-r/-t beside a shape (and warns); resetting stats at each stage would lose failures.
    assert not {"-u", "-r", "-t", "--window-time", "--reset-stats"} & set(command)
    steady = locust_command(LoadSettings("h:1", "m", data, duration_s=7), ClosedLoop(2), tmp_path, None)
    assert steady[steady.index("--window-time") + 1] == "7" and "--reset-stats" in steady


def test_each_step_says_how_its_result_is_recorded() -> None:
    assert ClosedLoop(8).recorded(workers=2) == {"mode": "closed", "users": 8, "rate_rps": None, "arrivals": None}
    assert OpenLoop(50.0, "poisson").recorded(workers=3) == {
        "mode": "open",
        "users": 3,
        "rate_rps": 50.0,
        "arrivals": "poisson",
    }


def test_locust_commands(data: Path, tmp_path: Path) -> None:
    closed = LoadSettings("h:1", "m", data, ClosedLoop(8), duration_s=5, workers=2, metrics_url="h:2")
    master = locust_command(closed, ClosedLoop(8), tmp_path, tmp_path / "csv", "master")
    assert master[master.index("-u") + 1] == "8" and master[master.index("-r") + 1] == "8"
    assert "--master" in master and "--expect-workers" in master and "--rate" not in master
    assert master[master.index("--metrics-url") + 1] == "http://h:2/metrics"
    assert master[master.index("-f") + 1].endswith("locustfile.py")
    worker = locust_command(closed, ClosedLoop(8), tmp_path, None, "worker")
    assert "--worker" in worker and "--headless" not in worker and "--csv" not in worker
    slow_spawn = locust_command(closed, ClosedLoop(8, spawn_rate=2.0), tmp_path, None)
    assert slow_spawn[slow_spawn.index("-r") + 1] == "2"
    poisson = OpenLoop(50.0, "poisson")
    open_loop = LoadSettings("h:1", "m", data, poisson)
    local = locust_command(open_loop, poisson, tmp_path, tmp_path / "csv")
    assert local[local.index("-f") + 1].endswith("locustfile_open_loop.py")
    assert local[local.index("--rate") + 1] == "50" and local[local.index("--arrivals") + 1] == "poisson"
    assert local[local.index("-u") + 1] == "1"
    with_workers = locust_command(LoadSettings("h:1", "m", data, poisson, workers=3), poisson, tmp_path, None, "master")
    assert with_workers[with_workers.index("-u") + 1] == "3", "one arrival generator per worker process"
    assert open_loop.step_name(poisson) == "m-rate50-poisson" and closed.step_name(ClosedLoop(8)) == "m-u8"


def test_token_requests_are_cut_to_their_own_length() -> None:
    from loadtest.request_data import trim_padding

    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=np.int64)
    ids = np.arange(10, dtype=np.int64).reshape(2, 5)
    trimmed = trim_padding({"input_ids": ids, "attention_mask": mask})
    assert trimmed["input_ids"].shape == (2, 3) and trimmed["attention_mask"].shape == (2, 3)
    np.testing.assert_array_equal(trimmed["input_ids"], ids[:, :3])
    images = {"image": np.zeros((2, 1, 8, 8), np.float32)}
    assert trim_padding(images) is images  # no attention mask: untouched
