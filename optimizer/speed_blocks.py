"""The speed gate's blocks of alternated FP32/INT8 runs, and which clock's figures judge them.

Each pair of runs is read on two clocks: the wall clock (the latency a quiet machine serves) and the timing child's
own CPU time per run (ORT's spinning is off in the timing sessions, so a session's idle workers burn none of it).
Other processes taking the cores stretch a run's wall time by however long it waited, and its CPU time far less:
liveness (@vladmandic/human, 2 threads, batch 8, 2-core AMD EPYC VM, 400 pairs a block, session 65) read per block
1.05-1.19× by the wall clock and 1.13-1.17× by CPU time while other processes took 49-68 % of the cores, and
1.14-1.30× against 1.11-1.18× with two more CPU burners (71-85 %); the gate had refused it at 1.04× by the wall
clock, 51 % busy. CPU time misses a gain or loss in parallel efficiency, so it only decides where the wall clock
cannot (a busy machine), and a build ships only where the other clock does not show INT8 slower than FP32.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optimizer.cpu_clock import BUSY_SHARE
from optimizer.speed_verdict import FASTER, RoundsVerdict, judge_rounds, median_index, uncertain_line

# Busy blocks are retaken only while the gate has run less than this: a YOLOv8-seg's six blocks (three retaken
# for other processes' load) took 6 min of a 10-min optimize; past it the figure stands, marked busy.
RETAKE_SECONDS = 60.0
WALL, CPU_TIME = "wall clock", "CPU time"


@dataclass(frozen=True)
class Block:
    """One block of alternated FP32/INT8 runs: its median pair's ms and ratio, others' share, the pairs timed."""

    fp32_ms: float  # the pair whose ratio is the block's median (`median_index`; the lower middle for an even count)
    int8_ms: float
    ratio: float  # median over the block's pairs of fp32 ms / int8 ms, each pair timed back to back
    others_share: float | None = None
    pairs: int = 0
    cpu_ratio: float | None = None  # the same median on each run's CPU time (None: not read)

    @property
    def quiet(self) -> bool:
        return self.others_share is None or self.others_share <= BUSY_SHARE

    @classmethod
    def of_pairs(
        cls,
        fp32_ms: list[float],
        int8_ms: list[float],
        others_share: float | None = None,
        fp32_cpu: Sequence[float] = (),
        int8_cpu: Sequence[float] = (),
    ) -> Block:
        """The block of these pairs of runs (fp32_ms[i] and int8_ms[i] timed back to back): the median of their
        ratios (the gate's figure, as ever), and the ms of its median pair (the lower middle for an even count);
        with each run's CPU time, the median of those ratios too."""
        ratios = _ratios(fp32_ms, int8_ms)
        middle = median_index(ratios)
        cpu = float(statistics.median(_ratios(fp32_cpu, int8_cpu))) if fp32_cpu else None
        ratio = float(statistics.median(ratios))
        return cls(float(fp32_ms[middle]), float(int8_ms[middle]), ratio, others_share, len(ratios), cpu)


def _ratios(fp32: Sequence[float], int8: Sequence[float]) -> list[float]:
    return [f / i if i > 0 else float("inf") for f, i in zip(fp32, int8, strict=True)]


def judged_blocks(blocks: list[Block]) -> list[Block]:
    """The blocks the figure comes from: the quiet ones where at least two exist, else all of them (marked busy)."""
    quiet = [block for block in blocks if block.quiet]
    return quiet if len(quiet) >= 2 else blocks


def take_blocks(
    one_block: Callable[[], Block],
    rounds: int,
    retake_s: float = RETAKE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    min_speedup: float | None = None,
) -> list[Block]:
    """`rounds` blocks, and up to `rounds` more while fewer than `rounds` of them were quiet or (given `min_speedup`)
    the judged blocks' ratios do not settle the verdict (`speed_verdict.judge_rounds`), as long as another block
    (as long as the mean so far) ends within `retake_s` of the start."""
    started = clock()
    blocks = [one_block() for _ in range(rounds)]
    for _ in range(rounds):
        spent = clock() - started
        if _enough(blocks, rounds, min_speedup) or spent + spent / len(blocks) > retake_s:
            break
        blocks.append(one_block())
    return blocks


def _enough(blocks: list[Block], rounds: int, min_speedup: float | None) -> bool:
    if sum(block.quiet for block in blocks) < rounds:
        return False
    return min_speedup is None or judge_rounds([b.ratio for b in judged_blocks(blocks)], min_speedup).settled


@dataclass(frozen=True)
class BasisVerdict:
    """The deciding clock's rounds judged, and the other clock's median beside it."""

    basis: str  # WALL, or CPU_TIME where the machine was busy and CPU times were read
    verdict: RoundsVerdict
    other: float | None  # the other clock's median (None: no CPU times read)

    @property
    def other_basis(self) -> str:
        return CPU_TIME if self.basis == WALL else WALL

    @property
    def disagree(self) -> bool:
        """The deciding clock shows INT8 faster, the other one slower than FP32: neither is to be trusted. Quiet too:
        INT8 that finishes sooner on more CPU time (its kernels spread over both threads) serves fewer requests a
        second once every core is busy, which is what Triton's instances make of a loaded server."""
        return self.verdict.outcome == FASTER and self.other is not None and self.other < self.verdict.floor

    @property
    def ships(self) -> bool:
        return self.verdict.outcome == FASTER and not self.disagree


def decide(wall: Sequence[float], cpu: Sequence[float], min_speedup: float, busy: bool) -> BasisVerdict:
    """Judge the wall clock's rounds, or the CPU time's where the machine was `busy` and they were read."""
    wall_median = float(statistics.median(wall)) if wall else None
    cpu_median = float(statistics.median(cpu)) if cpu else None
    if busy and cpu:
        return BasisVerdict(CPU_TIME, judge_rounds(cpu, min_speedup), wall_median)
    return BasisVerdict(WALL, judge_rounds(wall, min_speedup), cpu_median)


def disagree_line(judged: BasisVerdict, others_share: float | None, busy: bool, drift: str = "") -> str:
    """E.g. "the clocks disagree: INT8 is 1.16× FP32 by CPU time but 0.95× by the wall clock, timed on a busy
    machine (other processes used 80% of the cores); time again when idle, or deploy fp32 (or pass --allow-slower)"."""
    busy = busy and others_share is not None
    load = f", timed on a busy machine (other processes used {others_share:.0%} of the cores)" if busy else ""
    again = "time again when idle, or " if busy else ""
    return (
        f"the clocks disagree: INT8 is {judged.verdict.median:.2f}× FP32 by {_the(judged.basis)} but "
        f"{judged.other:.2f}× by {_the(judged.other_basis)}{load}; {again}deploy fp32 (or pass --allow-slower){drift}"
    )


def basis_note(judged: BasisVerdict, others_share: float | None) -> str:
    """Where CPU time decided, which clock and why, and the wall clock's figure, said after the line's advice (its
    words before it stay as a quiet machine's), e.g. "; judged by CPU time, the machine busy (other processes used 51%
    of the cores): 1.04× by the wall clock"; "" where the wall clock decided."""
    if judged.basis != CPU_TIME or judged.other is None:
        return ""
    load = f" (other processes used {others_share:.0%} of the cores)" if others_share is not None else ""
    return f"; judged by CPU time, the machine busy{load}: {judged.other:.2f}× by the wall clock"


def uncertain_basis_line(judged: BasisVerdict, others_share: float | None, drift: str = "") -> str:
    """`speed_verdict.uncertain_line`, and where CPU time decided, its note (`basis_note`)."""
    return uncertain_line(judged.verdict, others_share, drift) + basis_note(judged, others_share)


def _the(basis: str) -> str:
    return f"the {basis}" if basis == WALL else basis
