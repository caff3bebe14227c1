"""The never-sent note names the part of the client the send-lag note beside it blames (pl10): a Pareto trace's said
"all 64 in-flight slots were taken: the server's capacity or that limit was below the offered rate (raise
--max-in-flight …)" while its send-lag note said "the load generator fell behind its schedule (p99 309 ms late, its
CPU)"."""

from __future__ import annotations

import dataclasses

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult


def _pareto(generator_ms: float, peak_in_flight: int = 65) -> LoadResult:
    """The probe's figures: 4277 offered at 420 req/s, 251 never sent, send lag p99 574 ms."""
    return LoadResult(
        model="dense",
        url="127.0.0.1:8001",
        mode="open",
        users=1,
        window_s=10.0,
        requests=3963,
        failed_requests=0,
        throughput_rps=380.3,
        inferences_per_s=380.3,
        latency=LatencySummary.from_samples([52.0, 631.0]),
        rate_rps=420.3,
        arrivals="trace",
        max_in_flight=64,
        peak_in_flight=peak_in_flight,
        offered_requests=4277,
        unsent=251,
        send_lag_p99_ms=574.3,
        send_lag_p50_ms=13.7,
        generator_lag_p99_ms=generator_ms,
    )


def test_a_generator_behind_its_schedule_is_the_never_sent_notes_cause_too() -> None:
    result = _pareto(generator_ms=309.46)
    unsent, late = result.unsent_note() or "", result.send_lag_note() or ""
    assert "the load generator fell behind its schedule (p99 309 ms late, its CPU)" in late
    assert (
        "251 never sent: the load generator fell behind its schedule: p99 309 ms late, its CPU (they waited" in unsent
    )
    assert "--max-in-flight" not in unsent and "capacity" not in unsent


def test_free_slots_taken_up_late_by_the_threads_are_its_cause_too() -> None:
    result = dataclasses.replace(_pareto(generator_ms=2.0), peak_in_flight=10)
    assert "the client's own threads taking the calls up late" in (result.send_lag_note() or "")
    assert "251 never sent: at most 10 of 64 in-flight slots were in use: the client's own threads took the calls" in (
        result.unsent_note() or ""
    )


def test_a_full_pool_keeps_the_never_sent_notes_own_words() -> None:
    result = _pareto(generator_ms=20.0)
    assert "all 64 in-flight slots were taken, so requests waited" in (result.send_lag_note() or "")
    assert "251 never sent: all 64 in-flight slots were taken (--max-in-flight 64): the server's capacity or that" in (
        result.unsent_note() or ""
    )
