"""On a busy machine the speed gate decides by each run's CPU time, the wall clock's figure beside it (session 65).

Probe 64A: liveness' INT8 was refused at 1.04× by the wall clock, "timed on a busy machine (other processes used
51% of the cores)", where its paired runs' CPU time read 1.11-1.18× busy and 1.13-1.17× at ambient load. The rule is
tested on given block figures; nothing here is timed but the child loop's fields.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from optimizer.speed import Block, SpeedRecord, SpeedSettings, compare_speed, time_alternating

WALL_SHORT = (1.04, 1.02, 1.06, 1.05, 1.03, 1.04)  # probe 64A's busy wall clock: below the 1.1 bar
CPU_FAST = (1.15, 1.16, 1.16, 1.17, 1.15, 1.16)


def _record(wall: tuple[float, ...], cpu: tuple[float, ...], others: float | None) -> SpeedRecord:
    return SpeedRecord(
        1.27, 1.09, statistics.median(wall), 1.1, 8, 2, "AMD EPYC", round_speedups=wall, others_share=others,
        cpu_round_speedups=cpu, cpu_speedup=statistics.median(cpu),
    )  # fmt: skip


def test_busy_blocks_short_by_the_wall_clock_ship_on_cpu_time_and_record_both() -> None:
    record = _record(WALL_SHORT, CPU_FAST, 0.51)
    assert record.busy and record.holds
    saved = record.to_dict()
    assert saved["basis"] == "CPU time" and saved["verdict"] == "faster"
    assert saved["speedup"] == 1.04 and saved["cpu_speedup"] == pytest.approx(1.16)
    assert saved["cpu_round_speedups"] == CPU_FAST and saved["round_speedups"] == WALL_SHORT


def test_a_quiet_machine_decides_by_the_wall_clock() -> None:
    record = _record(WALL_SHORT, CPU_FAST, 0.05)
    assert not record.busy and not record.holds and record.to_dict()["basis"] == "wall clock"
    assert record.line() == ("INT8 is 1.04× FP32 here, below --min-speedup 1.1; deploy fp32 (or pass --allow-slower)")


def test_bases_that_disagree_refuse_and_say_both_figures() -> None:
    slower_by_wall = _record((0.95, 0.93, 0.97, 0.96, 0.94, 0.95), CPU_FAST, 0.8)
    assert not slower_by_wall.holds
    assert slower_by_wall.line() == (
        "the clocks disagree: INT8 is 1.16× FP32 by CPU time but 0.95× by the wall clock, timed on a busy machine "
        "(other processes used 80% of the cores); time again when idle, or deploy fp32 (or pass --allow-slower)"
    )
    slower_by_cpu = _record((1.3, 1.25, 1.35), (0.95, 0.96, 0.94), 0.05)  # quiet: the wall clock decides, CPU vetoes
    assert not slower_by_cpu.holds and "0.95× by CPU time" in slower_by_cpu.line()


def test_busy_and_short_by_cpu_time_too_is_refused_naming_the_basis_and_the_load() -> None:
    record = _record(WALL_SHORT, (1.05, 1.04, 1.06, 1.05, 1.03, 1.05), 0.51)
    assert not record.holds
    assert record.line() == (
        "INT8 is 1.05× FP32 here, below --min-speedup 1.1; deploy fp32 (or pass --allow-slower); judged by CPU time, "
        "the machine busy (other processes used 51% of the cores): 1.04× by the wall clock"
    )


def test_blocks_carry_their_cpu_time_ratio_into_the_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import optimizer.speed as speed

    block = Block.of_pairs([2.0, 2.0, 2.0], [1.0, 2.0, 4.0], 0.8, fp32_cpu=[1.5, 1.5, 1.5], int8_cpu=[1.0, 1.0, 3.0])
    assert block.ratio == 1.0 and block.cpu_ratio == 1.5
    queue = iter([block] * 6)
    monkeypatch.setattr(speed, "time_pair", lambda *_: next(queue))
    record = compare_speed(tmp_path / "a", tmp_path / "b", {"x": np.zeros((2, 3), np.float32)}, SpeedSettings())
    assert record.cpu_round_speedups == (1.5,) * 6 and record.cpu_speedup == 1.5 and record.busy


def test_the_childs_loop_reads_each_runs_cpu_time(tiny_onnx: Path) -> None:
    block = time_alternating((tiny_onnx, tiny_onnx), {"pixels": np.zeros((2, 1, 8, 8), np.float32)}, 1, 0.05, 3)
    assert block.cpu_ratio is not None and block.cpu_ratio > 0


def test_optimize_shows_the_cpu_time_that_decided_beside_the_wall_clock() -> None:
    """A build shipped on CPU time: optimize's speed row and caveat said only the wall clock's 1.04× ("that figure is
    uncertain"), the figure that had not decided."""
    from quantserve.cli.commands.optimize import speed_notes
    from quantserve.cli.optimize_tables import _speed_row

    speed = _record(WALL_SHORT, CPU_FAST, 0.51).to_dict()
    row = _speed_row(speed)[1]
    assert "busy: others took 51% of the cores; by CPU time 1.16×, which decided" in row, row
    assert speed_notes(speed) == [
        "INT8 was timed at 1.16× FP32 by CPU time (which decided) and 1.04× by the wall clock, while other processes "
        "took 51% of the cores; time again when the machine is idle"
    ]
    quiet = _record(WALL_SHORT, CPU_FAST, 0.05).to_dict()
    assert "by CPU time" not in _speed_row(quiet)[1] and speed_notes(quiet) == []
