"""The "never sent" line names the client's --max-in-flight when an arrival found every slot taken, and the server's
capacity otherwise (it blamed the server for 326 arrivals a full pool of one slot held back)."""

from __future__ import annotations

import dataclasses

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult


def _unsent(peak_in_flight: int) -> LoadResult:
    return LoadResult(
        model="m",
        url="127.0.0.1:8001",
        mode="open",
        users=1,
        window_s=5.0,
        requests=635,
        failed_requests=0,
        throughput_rps=127.0,
        inferences_per_s=127.0,
        latency=LatencySummary.from_samples([1.0, 2.0]),
        rate_rps=200.0,
        arrivals="constant",
        max_in_flight=1,
        peak_in_flight=peak_in_flight,
        offered_requests=961,
        unsent=326,
    )


def test_a_full_in_flight_pool_is_named_as_the_cause_of_unsent_arrivals() -> None:
    full = _unsent(peak_in_flight=2)  # an arrival found the 1 slot taken: 1 in flight and itself
    assert "326 never sent: the 1 in-flight slot was taken (--max-in-flight 1)" in (full.unsent_note() or "")
    assert "or that limit was below the offered rate (raise --max-in-flight to tell which" in (full.unsent_note() or "")
    free = dataclasses.replace(full, max_in_flight=64, peak_in_flight=10)
    assert "326 never sent: the server's capacity was below the offered rate" in (free.unsent_note() or "")
    many = dataclasses.replace(full, max_in_flight=4, peak_in_flight=5)
    assert "326 never sent: all 4 in-flight slots were taken (--max-in-flight 4)" in (many.unsent_note() or "")
