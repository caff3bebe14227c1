"""A sweep's line reads only the steps that ran their whole window (session 52): an interrupted last step (3.6 of
10 s measured) was read beside the others and the line said throughput "still rose … sweep higher"."""

from __future__ import annotations

from test_load_results import make_result

from loadtest.load_run import LoadRun
from loadtest.sweep_knee import sweep_note


def _step(users: int, rps: float, p99: float, interrupted: bool = False):
    result = make_result("slow", users, seed=users)
    result.throughput_rps, result.latency.p99_ms = rps, p99
    result.interrupted = interrupted
    return result


def test_an_interrupted_step_is_left_out_of_the_sweeps_reading_and_named() -> None:
    run = LoadRun("slow", [_step(1, 100.0, 5.0), _step(4, 380.0, 9.0), _step(8, 1123.6, 12.0, interrupted=True)])
    note = sweep_note(run)
    assert note is not None
    assert note.startswith("slow sweep (the 8-user step cut short, left out): ")
    assert "1123.6" not in note and "sweep higher" in note  # 1 → 4 users still rose: read from whole steps only


def test_a_sweep_left_with_one_whole_step_has_no_line() -> None:
    run = LoadRun("slow", [_step(1, 100.0, 5.0), _step(4, 380.0, 9.0, interrupted=True)])
    assert sweep_note(run) is None
