"""How much of the machine's cores other processes took while this one timed: the mark above which a timing is
taken on a busy machine (`BUSY_SHARE`), read by optimize's speed gate, the profiler, loadtest's utilization and tune.
Apart from `optimizer.speed` so the load test reads it without importing ONNX."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Other processes used more than this share of the cores while a model was timed: the figure is
# recorded as taken on a busy machine (2-thread timings swung 0.3-10x per round at load 7 on 2 cores).
BUSY_SHARE = 0.25


@dataclass(frozen=True)
class CpuClock:
    """Where the machine's CPU seconds, this process's and the wall clock stood: the start of a window whose
    `others_share` says how much of the cores other processes took (what makes a timing `BUSY_SHARE`-busy)."""

    machine: float | None
    own: float
    wall: float

    @classmethod
    def now(cls) -> CpuClock:
        return cls(machine_busy_seconds(), _own_cpu_seconds(), time.perf_counter())

    def others_share(self) -> float | None:
        """Share of all cores other processes used since `now()`: the machine's CPU less this process's (None
        off Linux)."""
        after = machine_busy_seconds()
        if self.machine is None or after is None:
            return None
        used = (after - self.machine) - (_own_cpu_seconds() - self.own)
        return round(min(1.0, max(0.0, used) / ((time.perf_counter() - self.wall) * (os.cpu_count() or 1))), 3)


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat; None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if fields[0] != "cpu" or len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(v) for v in fields[1:9])
    steal = rest[0] if rest else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
