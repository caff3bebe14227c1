"""Hardware utilization sampled during a load run: NVML on an NVIDIA GPU, else the server's CPU and memory; and the
whole machine's CPU beside it, split into the server's, the load generator's and everyone else's.

Never a made-up GPU figure: where NVML does not load or finds no device, the result says
so and carries the `tritonserver` process's CPU% and RSS (with its backend stub children).
The machine's busy CPU comes from /proc/stat (steal time included: a VM neighbour shows there), the load
generator's from this process and its children (the Locust processes) other than the server's family. Measured on
2 cores: with 3 CPU burners running, an MLP served 349 req/s against 1298 idle and the report blamed "the load
generator's CPU" while only tritonserver's CPU (28 % against 72 %) was recorded.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from loadtest.server_pids import ServerPids

K = TypeVar("K")


# Other processes' share of the cores differs by this much or more between two windows a line compares (the steps
# of a sweep, a soak's first and last fifth, the stages of a staged load): the difference is theirs as much as the
# server's. 15 points of the machine taken from the server and its clients can alone move a CPU-bound step's req/s
# by about 15 %, past the sweep's 10 % band (`sweep_knee.LEVEL`); a busy loop in a sweep's 16-user step on 2 cores
# took 51 % against 17 % at 4 users and read as a knee, "46% less", where, quiet, the same sweep did not fall.
OTHERS_SHIFT = 0.15
MACHINE_KEYS = ("machine_cpu_pct", "process_cpu_pct", "generator_cpu_pct")  # a timeline row's, `others_share`'s terms


def others_shift(shares: dict[K, float | None]) -> tuple[K, K] | None:
    """The windows (keys of `shares`, others' share of the cores in each) where others took the most and the least,
    where those differ by OTHERS_SHIFT or more; None where they do not, or fewer than two are known."""
    known = {key: share for key, share in shares.items() if share is not None}
    if len(known) < 2:
        return None
    busiest, quietest = max(known, key=known.__getitem__), min(known, key=known.__getitem__)
    return (busiest, quietest) if known[busiest] - known[quietest] >= OTHERS_SHIFT else None


@dataclass
class Utilization:
    """Averages and peaks over the samples that fell inside the measured window."""

    source: str  # "nvml" or "psutil"
    note: str  # e.g. "no NVIDIA GPU (NVML Shared Library Not Found); tritonserver process figures"
    samples: int = 0
    gpu_name: str | None = None
    gpu_util_pct_mean: float | None = None
    gpu_util_pct_max: float | None = None
    gpu_memory_used_mb_max: float | None = None
    gpu_power_w_mean: float | None = None
    process_cpu_pct_mean: float | None = None  # 100 = one core busy
    process_cpu_pct_max: float | None = None
    process_rss_mb_max: float | None = None
    timeline: list[dict[str, float]] = field(default_factory=list)
    machine_cpu_pct_mean: float | None = None  # every process on the machine (100 = one core busy; None: not read)
    generator_cpu_pct_mean: float | None = None  # the load generator: the loadtest process and its Locust children
    cpu_count: int | None = None  # the machine's cores, of which `machine_cpu_pct_mean` is a share
    # the cores the load generator may use (its CPU affinity, `serving.machine.cpu_facts`), which its --workers share:
    # the send-lag advice weighed them against the machine's (None: not recorded, an older file)
    usable_cores: int | None = None

    @property
    def others_share(self) -> float | None:
        """The share of the machine's cores that neither tritonserver nor the load generator used (None: unknown)."""
        return _others_share(
            self.machine_cpu_pct_mean, self.process_cpu_pct_mean, self.generator_cpu_pct_mean, self.cpu_count
        )

    def others_share_between(self, start: float, end: float) -> float | None:
        """`others_share` over the samples taken within (start, end] (wall-clock seconds) alone: a soak's first or
        last fifth, a stage of a staged window (None: no machine sample there). A sample measures the CPU since the
        one before it, so one taken at `start` is the time before."""
        rows = [r for r in self.timeline if start < r["t"] <= end]
        machine, server, generator = (_mean(rows, key) for key in MACHINE_KEYS)
        return _others_share(machine, server, generator, self.cpu_count)

    def busy_note(self, label: str) -> str | None:
        """One line when other processes took over BUSY_SHARE of the cores during the window (optimize's bar)."""
        from optimizer.cpu_clock import BUSY_SHARE

        share = self.others_share
        if share is None or share <= BUSY_SHARE:
            return None
        return (
            f"{label}: other processes (neither tritonserver nor the load generator) took {share:.0%} of the "
            f"machine's {self.cpu_count} cores during the window: the server and the client shared the CPU with "
            "them, so these figures are below what they do alone; load-test on an otherwise idle machine"
        )


def _nvml_handle() -> tuple[Any, Any, str] | str:
    """(pynvml, device handle, name), or the reason there is no NVIDIA GPU to sample."""
    try:
        import pynvml

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            return "no NVIDIA GPU (NVML found no device)"
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        return pynvml, handle, name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:  # ImportError or any NVMLError: both mean "no GPU figures"
        return f"no NVIDIA GPU ({exc or type(exc).__name__})"


class UtilizationSampler:
    """Samples in a background thread every `interval_s` until stopped; use as a context manager."""

    def __init__(self, server_pid: int | None, interval_s: float = 0.5, follow: ServerPids | None = None) -> None:
        """`follow`: the processes listening on the server's port; where `server_pid` is the first of them (not its
        parent, `quantserve serve`, whose family holds whichever child it restarted), the samples follow the one
        listening now: they followed a server killed before the window opened, dead through all of it."""
        self.server_pid = server_pid
        self.interval_s = interval_s
        self.follow = follow
        self._rows: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="utilization-sampler", daemon=True)
        nvml = _nvml_handle()
        self._nvml = None if isinstance(nvml, str) else nvml
        self.note = nvml if isinstance(nvml, str) else f"NVIDIA GPU via NVML: {nvml[2]}"
        self._processes: dict[int, Any] = {}
        self._machine_at: tuple[float, float] | None = None  # (busy CPU seconds, monotonic time) at the last sample

    def __enter__(self) -> UtilizationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            row = {"t": time.time()}
            root = self._server_root()
            row.update(self._sample_gpu() if self._nvml else {})
            row.update(self._sample_process(root))
            row.update(self._sample_machine(root))
            self._rows.append(row)
            self._stop.wait(self.interval_s)

    def _sample_gpu(self) -> dict[str, float]:
        pynvml, handle, _ = self._nvml  # type: ignore[misc]
        rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            "gpu_util_pct": float(rates.gpu),
            "gpu_memory_used_mb": memory.used / 2**20,
            "gpu_power_w": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        }

    def _server_root(self) -> int | None:
        """The process whose family is the server's now: `server_pid`, or the one listening in its place."""
        listening = self.follow.current() if self.follow is not None else None
        if self.follow is not None and self.server_pid is not None and self.server_pid == self.follow.first:
            return listening
        return self.server_pid

    def _sample_process(self, root: int | None) -> dict[str, float]:
        """CPU% and RSS of the server and its children (the Python backend stubs run the models)."""
        import psutil

        family = _family(root) if root is not None else []
        if not family:
            return {}
        cpu = rss = 0.0
        for proc in family:
            # cpu_percent() measures since the previous call on the same object, so keep them.
            tracked = self._processes.setdefault(proc.pid, proc)
            try:
                cpu += tracked.cpu_percent(None)
                rss += tracked.memory_info().rss / 2**20
            except psutil.Error:
                continue
        return {"process_cpu_pct": cpu, "process_rss_mb": rss}

    def _sample_machine(self, root: int | None) -> dict[str, float]:
        """Every process's CPU since the last sample (/proc/stat), and the load generator's: this process and its
        children (the Locust processes) other than the server's family (a server the caller started is a child)."""
        import psutil

        from optimizer.cpu_clock import machine_busy_seconds

        busy, now = machine_busy_seconds(), time.monotonic()
        last, self._machine_at = self._machine_at, (busy, now) if busy is not None else None
        server = {p.pid for p in _family(root)} if root is not None else set()
        generator = 0.0
        for proc in (p for p in _family(psutil.Process().pid) if p.pid not in server):
            try:
                generator += self._processes.setdefault(proc.pid, proc).cpu_percent(None)
            except psutil.Error:
                continue
        if busy is None or last is None or now <= last[1]:
            return {}
        return {"machine_cpu_pct": 100 * (busy - last[0]) / (now - last[1]), "generator_cpu_pct": generator}

    def result(self, start: float, end: float) -> Utilization:
        """Summarize the samples taken within [start, end] (wall-clock seconds)."""
        from serving.machine import cpu_facts

        rows = [r for r in self._rows if start <= r["t"] <= end and len(r) > 1]
        util = Utilization(
            source="nvml" if self._nvml else "psutil",
            note=self.note if self._nvml else f"{self.note}; tritonserver process CPU and memory instead",
            samples=len(rows),
            gpu_name=self._nvml[2] if self._nvml else None,
            timeline=rows,
        )
        if self._nvml:
            util.gpu_util_pct_mean = _mean(rows, "gpu_util_pct")
            util.gpu_util_pct_max = _max(rows, "gpu_util_pct")
            util.gpu_memory_used_mb_max = _max(rows, "gpu_memory_used_mb")
            util.gpu_power_w_mean = _mean(rows, "gpu_power_w")
        util.process_cpu_pct_mean = _mean(rows, "process_cpu_pct")
        util.process_cpu_pct_max = _max(rows, "process_cpu_pct")
        util.process_rss_mb_max = _max(rows, "process_rss_mb")
        util.machine_cpu_pct_mean = _mean(rows, "machine_cpu_pct")
        util.generator_cpu_pct_mean = _mean(rows, "generator_cpu_pct")
        util.cpu_count = os.cpu_count() if util.machine_cpu_pct_mean is not None else None
        util.usable_cores = cpu_facts().usable_cores
        return util


def _others_share(
    machine: float | None, server: float | None, generator: float | None, cpu_count: int | None
) -> float | None:
    """The machine's busy CPU less tritonserver's and the load generator's, as a share of its cores (% of one core
    each; None: the machine's not read)."""
    if machine is None or not cpu_count:
        return None
    return min(1.0, max(0.0, machine - (server or 0.0) - (generator or 0.0)) / (100 * cpu_count))


def _family(pid: int) -> list[Any]:
    """The process `pid` and its descendants (psutil objects); none where it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return float(np.mean(values)) if values else None


def _max(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return float(np.max(values)) if values else None
