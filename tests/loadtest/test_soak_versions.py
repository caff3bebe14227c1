"""A soak across a deploy says so and is never judged flat (probe round 2, fault 3).

`--soak 2m` with v2 deployed at 65 s said "memory flat: 516 → 515 MB … p99 +29.2 %", exit 0, and recorded
versions ['1'] only: the step's notes, which a plain load test prints ("served versions changed (1 → 2)"), were
dropped, and the p99 drift read as the server's own over time.
"""

from __future__ import annotations

import numpy as np

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.soak import SoakResult, judge_soak, versions_judged
from loadtest.utilization import Utilization

COUNTED = "model 'm' served versions changed during the window (1 → 2)"


def _flat_soak_step() -> tuple[LoadResult, np.ndarray]:
    """A 60 s closed-loop step whose server memory stays flat, and its latency samples (p99 3 ms throughout)."""
    t = np.arange(0, 60, 0.5)
    rss = [{"t": float(x), "process_rss_mb": 500.0} for x in t]
    result = LoadResult("m", "127.0.0.1:8001", "closed", 4, 60.0, 1000, 0, 16.0, 16.0, LatencySummary.from_samples(t))
    result.utilization = Utilization("psutil", "no NVIDIA GPU (test)", samples=len(rss), timeline=rss)
    return result, np.stack([t, np.full_like(t, 3.0), np.ones_like(t)], axis=1)


def _judged(result: LoadResult, samples: np.ndarray) -> SoakResult:
    return judge_soak(result, 0.0, 60.0, samples, 20.0, 5.0)


def test_a_soak_across_a_deploy_its_counters_saw_says_it_and_is_not_judged_flat() -> None:
    result, samples = _flat_soak_step()
    assert _judged(result, samples).rss_flat and not _judged(result, samples).versions_changed
    result.server_counters_left_out = f"{COUNTED}: Triton's counters of an unloaded version are gone"
    soak = _judged(result, samples)
    assert not soak.rss_flat and soak.versions_changed == COUNTED
    lines = soak.summary().splitlines()
    assert lines[0].startswith(f"memory NOT JUDGED, {COUNTED}: two versions' memory and p99; across both: 500 → 500 MB")
    assert f"note: m @ 4 users: {COUNTED}: Triton's counters of an unloaded version are gone, so its " in lines[2]


def test_a_soak_whose_ready_versions_differ_at_its_end_says_it_and_records_them() -> None:
    result, samples = _flat_soak_step()
    soak = _judged(result, samples)
    soak.identity, soak.versions_at_end = RunIdentity("2026-12-01T08:21:14Z", versions=["1"]), ["1"]
    assert versions_judged(soak).rss_flat and soak.versions_changed is None
    soak.versions_at_end = ["2"]
    versions_judged(soak)
    assert not soak.rss_flat
    assert soak.versions_changed == "model 'm' served versions changed during the soak (1 → 2)"
    assert soak.summary().startswith(
        "memory NOT JUDGED, model 'm' served versions changed during the soak (1 → 2): two versions' memory and p99"
    )
