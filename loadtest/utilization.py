"""Hardware utilization sampled during a load run: NVML on an NVIDIA GPU, else the server's CPU and memory.

Never a made-up GPU figure: where NVML does not load or finds no device, the result says
so and carries the `tritonserver` process's CPU% and RSS (with its backend stub children).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

    def __init__(self, server_pid: int | None, interval_s: float = 0.5) -> None:
        self.server_pid = server_pid
        self.interval_s = interval_s
        self._rows: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="utilization-sampler", daemon=True)
        nvml = _nvml_handle()
        self._nvml = None if isinstance(nvml, str) else nvml
        self.note = nvml if isinstance(nvml, str) else f"NVIDIA GPU via NVML: {nvml[2]}"
        self._processes: dict[int, Any] = {}

    def __enter__(self) -> UtilizationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            row = {"t": time.time()}
            row.update(self._sample_gpu() if self._nvml else {})
            row.update(self._sample_process())
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

    def _sample_process(self) -> dict[str, float]:
        """CPU% and RSS of the server and its children (the Python backend stubs run the models)."""
        import psutil

        if self.server_pid is None:
            return {}
        try:
            root = psutil.Process(self.server_pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
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

    def result(self, start: float, end: float) -> Utilization:
        """Summarize the samples taken within [start, end] (wall-clock seconds)."""
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
        return util


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return float(np.mean(values)) if values else None


def _max(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return float(np.max(values)) if values else None
