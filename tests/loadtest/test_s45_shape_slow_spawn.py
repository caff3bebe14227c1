"""`loadtest --shape` refuses up front a stage whose users cannot all start (or stop) within it at its spawn rate
(session 45: `(16, 2)` for 5 s then `(4, 100)` showed stage 1 as "16 users | 0.0 of 5 | 0 requests" while up to 10
users had 9400 requests answered in it; `(16, 2)` alone exited 2 on "did any user start?"): the measured window opens
only once the first stage's users all run, and a later stage's row would name users that never all ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_flags import shape_from_flags
from quantserve.errors import QuantserveError

SHAPES = """
from locust import LoadTestShape


class Slow(LoadTestShape):
    def tick(self):
        return (16, 2) if self.get_run_time() < 5 else None


class SlowThen(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        return ((16, 2) if t < 5 else (4, 100)) if t < 10 else None


class SlowDown(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        return ((16, 100) if t < 5 else (4, 3)) if t < 9 else None


class Mid(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        return ((16, 8) if t < 5 else (4, 100)) if t < 10 else None
"""


def _refusal(given: str) -> str:
    with pytest.raises(QuantserveError) as raised:
        shape_from_flags(given, "", {}).check()
    return str(raised.value)


def test_a_stage_its_spawn_rate_cannot_fill_is_refused_before_the_run(tmp_path: Path) -> None:
    path = tmp_path / "slow.py"
    path.write_text(SHAPES)
    first = (
        "stage 1 (16 users for 5 s) asks spawn rate 2/s: starting 16 users takes 8 s, the stage's whole length or "
        "more, so it would never run at its 16 users; use a spawn rate above 3.2/s or a longer stage"
    )
    assert _refusal(f"{path}:Slow") == f"--shape {path}:Slow: {first}"
    assert _refusal(f"{path}:SlowThen") == f"--shape {path}:SlowThen: {first}"
    assert _refusal(f"{path}:SlowDown") == (
        f"--shape {path}:SlowDown: stage 2 (4 users for 4 s) asks spawn rate 3/s: stopping 12 users takes 4 s, the "
        "stage's whole length or more, so it would never run at its 4 users; use a spawn rate above 3/s or a longer "
        "stage"
    )
    mid = shape_from_flags(f"{path}:Mid", "", {})  # 2 s of ramp in a 5 s stage: runs, the ramp unmeasured by design
    mid.check()
    assert mid.plan.stages == ((16, 5.0), (4, 5.0))
