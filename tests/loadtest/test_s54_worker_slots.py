"""The in-flight slots said full are every Locust process's: --max-in-flight is per process.

Probed (session 54): `loadtest --rate 2000 --workers 2` (64 slots each) said "all 64 in-flight slots were taken"
in its never-sent and send-lag notes while 2 × 64 = 128 were (128 cut at the window's end).
"""

from __future__ import annotations

import pytest

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.send_lag import ClientLags, send_lag_cause, slots_words


def overloaded(workers: int) -> LoadResult:
    latency = LatencySummary(4060, 3000.0, 5000.0, 5777.0, 6000.0, 3100.0, 30.0, 6100.0)
    step = LoadResult("digits_int8", "h:1", "open", max(1, workers), 10.0, 4060, 0, 406.0, 406.0, latency)
    step.rate_rps, step.arrivals, step.workers, step.offered_requests = 2000.0, "poisson", workers, 15775
    step.send_lag_p50_ms, step.send_lag_p99_ms, step.generator_lag_p99_ms = 3439.0, 5777.0, 26.0
    step.max_in_flight, step.peak_in_flight, step.cut_at_end, step.unsent = 64, 65, 128, 11587
    return step


@pytest.mark.parametrize(
    ("workers", "slots"),
    [(2, "all 128 in-flight slots (64 in each of 2 Locust workers)"), (0, "all 64 in-flight slots")],
)
def test_the_slots_said_taken_are_every_workers(workers: int, slots: str) -> None:
    notes = overloaded(workers).notes()
    unsent = [n for n in notes if "never sent" in n]
    late = [n for n in notes if "left the client" in n]
    assert len(unsent) == 1 and f"never sent: {slots} were taken (--max-in-flight 64)" in unsent[0], unsent
    assert len(late) == 1 and f"{slots} were taken, so requests waited for a free in-flight slot" in late[0], late


def test_free_slots_are_said_of_a_worker() -> None:
    cause = send_lag_cause(ClientLags(900.0, 100.0, 2.0, 20, 64, processes=2), 100.0)
    assert cause is not None and cause.words.startswith("at most 20 of a worker's 64 in-flight slots were in use")
    assert (
        slots_words(None, 2) == "all in-flight slots"
        and slots_words(1, 2) == "all 2 in-flight slots (1 in each of 2 Locust workers)"
    )


def test_one_slot_of_one_process_reads_as_before() -> None:
    """The end-to-end run's wording (`test_load_e2e`): "all 1 in-flight slots were taken" in the send-lag note,
    "the 1 in-flight slot was taken" in the never-sent note."""
    step = overloaded(0)
    step.max_in_flight, step.peak_in_flight = 1, 2
    notes = " ".join(step.notes())
    assert "all 1 in-flight slots were taken, so" in notes and "never sent: the 1 in-flight slot was taken" in notes
