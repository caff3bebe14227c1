from __future__ import annotations

import os
import time

from loadtest.utilization import UtilizationSampler


def _has_nvidia_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:
        return False


def test_samples_a_process_and_never_invents_gpu_figures() -> None:
    start = time.time()
    with UtilizationSampler(os.getpid(), interval_s=0.05) as sampler:
        # Keep this process busy so its CPU% is visible, until the sampler has taken a few rows
        # (no fixed duration: on a loaded machine the sampler thread may get little time).
        deadline = time.time() + 60
        while len(sampler._rows) < 4 and time.time() < deadline:
            sum(i * i for i in range(10_000))
            time.sleep(0.001)  # yield the GIL to the sampler thread
    util = sampler.result(start, time.time())
    assert util.samples >= 3
    assert util.process_rss_mb_max is not None and util.process_rss_mb_max > 10
    assert util.process_cpu_pct_max is not None and util.process_cpu_pct_max > 0
    if _has_nvidia_gpu():
        assert util.source == "nvml" and util.gpu_util_pct_mean is not None
    else:
        assert util.source == "psutil" and "no NVIDIA GPU" in util.note
        assert util.gpu_util_pct_mean is None and util.gpu_memory_used_mb_max is None and util.gpu_power_w_mean is None


def test_samples_outside_the_window_are_left_out() -> None:
    with UtilizationSampler(os.getpid(), interval_s=0.02) as sampler:
        time.sleep(0.2)
    assert sampler.result(0.0, 1.0).samples == 0


def test_a_vanished_server_gives_no_process_figures() -> None:
    with UtilizationSampler(2**22 + 12345, interval_s=0.02) as sampler:
        time.sleep(0.1)
    util = sampler.result(0.0, time.time() + 1)
    assert util.process_cpu_pct_mean is None
