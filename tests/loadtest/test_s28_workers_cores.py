"""More Locust worker processes than the client's cores is said: the probe's `--workers 5` on 2 cores ran 6 Locust
processes on them (600 req/s offered against 751 from one process) with no word of it."""

from __future__ import annotations

import numpy as np

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.utilization import Utilization
from loadtest.window_notes import workers_note

FIVE_ON_TWO = (
    "dense @ 8 users: --workers 5 on 2 cores: the client's 6 Locust processes (master and workers) share the cores, "
    "and may bound the load they offer; use at most --workers 2, or run the client on another machine"
)


def closed_result(workers: int, cores: int | None) -> LoadResult:
    """A closed-loop step of 8 users run with `workers` Locust workers on a machine of `cores` (None: unrecorded)."""
    latency = LatencySummary.from_samples(np.full(500, 5.0))
    result = LoadResult("dense", "127.0.0.1:1", "closed", 8, 5.0, 500, 0, 100.0, 100.0, latency, workers=workers)
    result.utilization = Utilization("psutil", "psutil", cpu_count=cores) if cores else None
    return result


def test_more_workers_than_cores_is_said_once_among_the_steps_notes() -> None:
    assert workers_note("dense @ 8 users", 5, 2) == FIVE_ON_TWO
    assert closed_result(5, 2).notes().count(FIVE_ON_TWO) == 1
    assert "1 core:" in (workers_note("m", 2, 1) or "")


def test_workers_within_the_cores_one_process_or_cores_unrecorded_say_nothing() -> None:
    assert workers_note("m", 2, 2) is None and workers_note("m", 0, 2) is None and workers_note("m", 5, None) is None
    for workers, cores in ((2, 2), (0, 2), (1, 4), (5, None)):
        assert not [note for note in closed_result(workers, cores).notes() if "Locust processes" in note]
