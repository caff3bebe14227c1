"""`loadtest --shape FILE.py[:Class]`: the user's own Locust `LoadTestShape` drives the closed-loop Triton users, a
stage per change of the user count it asks for, measured apart as `--stages`' are (issue 11: "no user
locustfile/LoadTestShape"). Its mistakes are refused up front in one line (a dry run of `tick()` in a child process);
a `tick()` that raises mid-run ends the run with the figures so far and a note (Locust alone exited 2, nothing kept).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_flags import shape_from_flags
from loadtest.load_run import LoadRun
from loadtest.stage_figures import read_stage_starts, stage_figures, write_shape_end, write_stage_start
from quantserve import cli
from quantserve.errors import QuantserveError
from serving.server import TritonServer

STEPS = """
from locust import LoadTestShape


class StepShape(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        for end, users in ((2, 1), (4, 4), (6, 2)):
            if run_time < end:
                return users, 10
        return None
"""
TWO = "from locust import LoadTestShape\n\nclass A(LoadTestShape):\n    def tick(self):\n        return None\n\n\n" + (
    "class B(LoadTestShape):\n    def tick(self):\n        return 1, 1\n"
)
NONE = "import os\n\n\nclass Helper:\n    pass\n"
BROKEN = "import no_such_module_here\n"
RAISES = (
    "from locust import LoadTestShape\n\nclass Boom(LoadTestShape):\n    def tick(self):\n        raise KeyError('x')\n"
)
ODD = "from locust import LoadTestShape\n\nclass Odd(LoadTestShape):\n    def tick(self):\n        return 2.5\n"


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]) -> str:
    out = tmp_path / "out"
    argv = ["loadtest", "--url", "127.0.0.1:28599", "--model", "m", "--data", str(tmp_path / "d.npz")]
    assert cli.main([*argv, "--out", str(out), *flags]) == 2
    assert not out.exists()
    return capsys.readouterr().err.removeprefix("quantserve: error: ").rstrip("\n")


def test_shape_flags_that_cannot_drive_a_run_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = _file(tmp_path, "steps.py", STEPS)
    for given, why in (
        (str(tmp_path / "gone.py"), "no such file"),
        (_file(tmp_path, "shape.txt", STEPS), "a shape is a Python file (FILE.py or FILE.py:Class)"),
        (_file(tmp_path, "none.py", NONE), "no LoadTestShape subclass (it defines Helper)"),  # the dry run's
    ):
        assert _refusal(tmp_path, capsys, ["--shape", given]) == f"--shape {given}: {why}"
    drop = "--shape sets its own users (its tick()); drop"
    for flags, dropped in (
        (["--stages", "1:2s"], "--stages"),
        (["--rate", "5", "--sweep", "1,2"], "--rate and --sweep"),
        (["--trace", "t.csv"], "--trace"),
        (["--users", "4", "--spawn-rate", "2"], "--users and --spawn-rate"),
    ):
        assert _refusal(tmp_path, capsys, ["--shape", steps, *flags]) == f"{drop} {dropped}"
    soak = "--soak runs one closed loop of --users for its own length; drop --shape"
    assert _refusal(tmp_path, capsys, ["--soak", "10s", "--shape", steps]) == soak


def test_the_dry_run_refuses_what_tick_cannot_run(tmp_path: Path) -> None:
    """Each its own child process (importing locust patches the interpreter), run side by side."""
    two = _file(tmp_path, "two.py", TWO)
    cases = [
        (two, "it defines 2 shape classes (A, B): name one, FILE.py:Class"),
        (f"{two}:C", "no shape class C in the file (its shape classes: A, B)"),
        (f"{two}:A", "A.tick() returned None at once, no stage"),
        (
            _file(tmp_path, "broken.py", BROKEN),
            "importing it raised ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
        (_file(tmp_path, "boom.py", RAISES), "Boom.tick() at 0 s raised KeyError: 'x'"),
        (_file(tmp_path, "odd.py", ODD), "Odd.tick() at 0 s returned 2.5, not (users, spawn_rate > 0) or None"),
    ]

    def refusal(given: str) -> str:
        with pytest.raises(QuantserveError) as raised:
            shape_from_flags(given, "", {}).check()
        return str(raised.value)

    with ThreadPoolExecutor(max_workers=3) as pool:
        told = list(pool.map(refusal, [given for given, _ in cases]))
    assert told == [f"--shape {given}: {why}" for given, why in cases]


def test_the_shape_s_stages_are_its_own_switches_with_how_it_ended(tmp_path: Path) -> None:
    """Written as they start (count and length unknown), read with both filled in from the shape's switches and end;
    the note on how it ended kept on the last stage."""
    for number, users, at in ((1, 1, 100.0), (2, 4, 102.0), (3, 2, 104.5)):
        write_stage_start(tmp_path, number, 0, users, 0.0, at)
    write_shape_end(tmp_path, 106.0, "the cap")
    starts = read_stage_starts(tmp_path)
    assert [(s["stages"], s["seconds"]) for s in starts] == [(3, 2.0), (3, 2.5), (3, 1.5)]
    figures = stage_figures(np.array([[101.0, 1.0, 1.0], [105.0, 2.0, 1.0]]), 100.5, 106.0, starts)
    assert [(f.label, f.planned_s, f.requests, f.note) for f in figures] == [
        ("stage 1/3: 1 user", 2.0, 1, ""),
        ("stage 2/3: 4 users", 2.5, 0, ""),
        ("stage 3/3: 2 users", 1.5, 1, "the cap"),
    ]


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("shape"))
    return triton_server_factory(repo), data  # free ports on 127.0.0.1


@pytest.mark.e2e
def test_the_user_s_shape_is_measured_stage_by_stage(
    served_mlp: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3-stage shape of 1, 4 and 2 users, ~2 s each: three stages with those users, each answered."""
    server, data = served_mlp
    shape = _file(tmp_path, "steps.py", STEPS)
    target = ["--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--out", str(tmp_path / "out")]
    assert cli.main(["loadtest", *target, "--shape", shape, "--metrics-url", server.metrics_url]) == 0
    console = capsys.readouterr().out
    (result,) = LoadRun.load(tmp_path / "out" / "load-mlp-staged.json").results
    assert [(s.number, s.stages, s.users) for s in result.stages] == [(1, 3, 1), (2, 3, 4), (3, 3, 2)]
    assert all(s.requests - s.failed_requests > 0 for s in result.stages), result.stages
    assert result.users == 4 and not any(s.note for s in result.stages)
    assert "shape StepShape (steps.py): 3 stages planned, 1, 4 and 2 users; 6 s in all" in console
    assert "stage by stage" in console and "3/3" in console


MID_RUN = """
from locust import LoadTestShape


class Late(LoadTestShape):
    def tick(self):
        if self.runner is not None and self.get_run_time() >= 2:  # the dry run (no runner) passes
            raise RuntimeError("stage table\\nran out")
        return (1 if self.get_run_time() < 1 else 3), 5
"""
# the driver asked at simulated seconds, as Locust's runner asks it, in a child process (locust monkey-patches)
DRIVE = """
import sys, time
from argparse import Namespace
from types import SimpleNamespace
from loadtest.locustfile_user_shape import UserShapeDriver

options = Namespace(user_shape=sys.argv[1], user_shape_cap=float(sys.argv[2]), record_dir=sys.argv[3])
driver = UserShapeDriver()
driver.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
for second in range(9):
    for shape in (driver, driver.shape):
        if shape is not None:
            shape.start_time = time.perf_counter() - second
    asked = driver.tick()
    print(asked)
    if asked is None:
        break
"""


@pytest.mark.parametrize(
    ("cap", "note"),
    [
        (
            "60",
            "Late.tick() at 2 s raised RuntimeError: stage table ran out; the run ended there, with the figures so far",
        ),
        (
            "2",
            "the shape's tick() had not returned None by its cap, 2 s (--duration; 1 h without it): the run stopped "
            "there",
        ),
    ],
)
def test_a_tick_that_raises_mid_run_or_the_cap_ends_the_run_noted(tmp_path: Path, cap: str, note: str) -> None:
    """Locust alone logged an unhandled greenlet exception and exited 2 (the harness kept nothing): the driver ends
    the run (None) with the stages so far recorded and notes why, as it does at the cap."""
    shape = _file(tmp_path, "late.py", MID_RUN)
    command = [sys.executable, "-c", DRIVE, f"{shape}:Late", cap, str(tmp_path)]
    told = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert told == ["(1, 5.0)", "(3, 5.0)", "None"]
    starts = read_stage_starts(tmp_path)
    assert [(s["number"], s["stages"], s["users"]) for s in starts] == [(1, 2, 1), (2, 2, 3)]
    assert starts[-1]["note"] == note
