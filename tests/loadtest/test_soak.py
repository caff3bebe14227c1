"""A short soak against a real tritonserver (slow suite): memory of the server and its stubs, p99 drift.

`quantserve loadtest --soak 10m` runs the long one; here 30 s shows the measurement itself:
enough memory samples, a fitted slope, a verdict within the margin, and p99 in both windows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadtest.soak import latency_drift, memory_trend
from quantserve.cli import main
from quantserve.errors import QuantserveError


@pytest.mark.slow
@pytest.mark.e2e
def test_short_soak_reports_flat_memory_and_p99_drift(served_models, tmp_path: Path) -> None:
    args = ["loadtest", "--url", served_models.url, "--model", served_models.fp32]
    args += ["--data", str(served_models.load_data), "--out", str(tmp_path), "--users", "4"]
    assert main([*args, "--soak", "30s", "--server-pid", str(served_models.pid)]) == 0
    soak = json.loads((tmp_path / f"soak-{served_models.fp32}.json").read_text())
    figures = {k: v for k, v in soak.items() if k != "rss_timeline"}
    print(f"\nsoak 30 s: {figures}")
    assert soak["failed_requests"] == 0 and soak["requests"] > 100
    assert len(soak["rss_timeline"]) >= 30 and soak["rss_start_mb"] > 0
    assert soak["rss_flat"], f"server memory grew {soak['rss_growth_mb']:.1f} MB (margin {soak['rss_margin_mb']})"
    assert soak["p99_first_ms"] > 0 and soak["p99_last_ms"] > 0
    identity = soak["identity"]  # what a load run records, so that a soak is known for what it loaded
    assert identity["started_at"].endswith("Z") or "+00:00" in identity["started_at"]
    assert identity["versions"] and identity["data_sha256"] and identity["data"] == str(served_models.load_data)


def test_memory_trend_flags_growth_beyond_the_margin() -> None:
    t = np.arange(0, 60, 0.5)
    flat = memory_trend(list(zip(t, 500 + 0.5 * np.sin(t), strict=True)), margin_mb=20, margin_pct=5)
    assert flat["rss_flat"] and abs(flat["rss_slope_mb_per_min"]) < 1
    leak = memory_trend(list(zip(t, 500 + 1.0 * t, strict=True)), margin_mb=20, margin_pct=5)
    assert not leak["rss_flat"] and leak["rss_slope_mb_per_min"] == pytest.approx(60, rel=1e-6)


def test_latency_drift_compares_first_and_last_windows() -> None:
    t = np.linspace(0, 100, 1001)
    samples = np.stack([t, np.where(t < 50, 2.0, 4.0), np.ones_like(t)], axis=1)
    drift = latency_drift(samples, 0, 100)
    assert drift["p99_first_ms"] == 2.0 and drift["p99_last_ms"] == 4.0 and drift["p99_drift_pct"] == 100.0
    with pytest.raises(QuantserveError, match="no successful requests"):
        latency_drift(samples[:10], 0, 100)


def test_a_soak_whose_server_restarted_is_never_flat() -> None:
    """A leak the OOM killer ends, then `quantserve serve` restarts: the new process starts low again, and a
    line across both would read the leak as a fall. The first process's climb is kept as evidence."""
    from loadtest.percentiles import LatencySummary
    from loadtest.results import LoadResult
    from loadtest.soak import judge_soak
    from loadtest.utilization import Utilization

    t = np.arange(0, 60, 0.5)
    climb = [{"t": float(x), "process_rss_mb": 500 + 0.05 * float(x)} for x in t]  # flat enough on its own
    usage = Utilization("psutil", "no NVIDIA GPU (test)", samples=len(climb), timeline=climb)
    result = LoadResult("m", "127.0.0.1:8001", "closed", 4, 60.0, 1000, 0, 16.0, 16.0, LatencySummary.from_samples(t))
    samples = np.stack([t, np.full_like(t, 3.0), np.ones_like(t)], axis=1)
    result.utilization = usage
    assert judge_soak(result, 0.0, 60.0, samples, 20.0, 5.0).rss_flat
    result.server_restarted = "pid 10 listened on its port at the start, pid 11 at the end"
    soak = judge_soak(result, 0.0, 60.0, samples, 20.0, 5.0)
    assert not soak.rss_flat and soak.server_restarted == result.server_restarted
    assert "memory NOT JUDGED, tritonserver restarted during the soak (pid 10" in soak.summary()
    result.utilization = Utilization("psutil", "test", samples=2, timeline=climb[:2])  # died almost at once
    short = judge_soak(result, 0.0, 60.0, samples, 20.0, 5.0)
    assert not short.rss_flat and np.isnan(short.rss_slope_mb_per_min) and short.rss_start_mb == 500.0
