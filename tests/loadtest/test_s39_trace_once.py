"""A trace's default run plays its pass once (issue 11, session 39): a pass of 5.0017 s (a 3000-request burst at its
start, one arrival 5 s later) ran 6 s and replayed the burst again in its last second — 6001 arrivals offered for a
file of 3001, said but not asked for. The pass is padded with idle time to the run's whole seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.load_pattern import TraceReplay
from loadtest.trace_plan import plan_lines
from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: the plan is printed, then the server check stops the run


def _herd(tmp_path: Path) -> Path:
    path = tmp_path / "herd.csv"
    path.write_text("timestamp\n" + "100.0\n" * 3000 + "105.0\n")
    return path


def test_one_pass_padded_to_whole_seconds_holds_every_arrival_once(tmp_path: Path) -> None:
    replay = TraceReplay(str(_herd(tmp_path)))
    recorded = replay.trace
    assert recorded.period_s == pytest.approx(5.0017, abs=1e-4) and recorded.arrivals_within(6.0) == 6001
    once = replay.once().trace
    assert once.period_s == 6.0 and once.recorded_period_s == pytest.approx(recorded.period_s)
    assert once.arrivals_within(6.0) == 3001 and once.idle_s == pytest.approx(6.0 - recorded.period_s)
    assert np.array_equal(once.offsets_s, recorded.offsets_s)
    assert once.summary(1.0)["idle_after_pass_s"] == pytest.approx(0.998333, abs=1e-6)
    assert "idle_after_pass_s" not in recorded.summary(1.0)
    plan = plan_lines(once, 6.0)
    assert plan == [
        f"trace {replay.path}: 3001 arrivals in a pass of 5 s and 0.998 s with none, to whole seconds, 500 req/s "
        "offered (peak 3000 req/s over 1 s); the run lasts 6 s, 1 pass"
    ]


def test_a_pass_already_whole_is_not_padded(tmp_path: Path) -> None:
    path = tmp_path / "even.csv"
    path.write_text("timestamp\n" + "".join(f"{k * 0.01:.3f}\n" for k in range(300)))  # 3.0000000000000004 s
    once = TraceReplay(str(path)).once().trace
    assert once.idle_s == 0.0 and once.arrivals_within(3.0) == 300


def test_the_default_run_pads_and_a_given_duration_does_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    argv = ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, "--data", str(data), "--model", "m"]
    argv += ["--trace", str(_herd(tmp_path)), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    assert "with none, to whole seconds" in capsys.readouterr().out.splitlines()[0]
    assert cli.main([*argv, "--duration", "12s"]) == 2
    plan = capsys.readouterr().out.splitlines()
    assert "with none" not in plan[0] and plan[0].endswith("the run lasts 12 s, 2.4 passes"), plan[0]


def test_padding_keeps_the_trace_already_read(tmp_path: Path) -> None:
    """`once` hands on the trace it read: the file is not read twice (a 2 M-row trace takes seconds)."""
    path = _herd(tmp_path)
    replay = TraceReplay(str(path))
    recorded = replay.trace
    path.unlink()
    once = replay.once()
    assert once.trace.offsets_s is recorded.offsets_s and once.trace.period_s == 6.0
