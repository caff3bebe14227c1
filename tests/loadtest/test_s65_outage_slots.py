"""In-flight slots filled by an outage are blamed on it, not on the rate, where outside it the server kept up.

Probed (session 65, probe A, f12): --rate 40 against a server answering 40 req/s at a 6 ms p50; its model's stub
stopped 8 s, crashed, and Triton restarted. The backlog failed "Connection refused" during the restart, so nothing
drained faster than offered (the stall's excuse, `stalled_slots`), and the send-lag note said "all 64 in-flight slots
were taken … the server answered slower than the offered rate; raise --max-in-flight or lower the rate", while the
outage note said "no successful request for 15.0 s (t = 4.14–19.09 s)" and every late request came from it.
A server slower than the offered rate throughout keeps the rate's advice, outage or not.
"""

from __future__ import annotations

import numpy as np

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.send_lag import ClientLags, send_lag_note, unsent_held_by
from loadtest.timeline import SecondStats, Stall, outages, per_second, stall

START, WINDOW_S, RATE, SLOTS = 9_000.0, 45.0, 40.0, 64
DOWN, BACK, REFUSED = 4.14, 19.09, 13.0  # no answer from DOWN; the backlog refused at REFUSED; answers again at BACK
OUTAGE_ADVICE = "find why the server stopped answering (see the outage note), then measure again for figures without it"
RATE_ADVICE = "the server answered slower than the offered rate; raise --max-in-flight or lower the rate"


def samples(capacity: float, down: tuple[float, float, float] | None) -> np.ndarray:
    """Rows (end, latency ms from the arrival, ok, send lag ms) of arrivals every 1/RATE s served first come, first
    served at `capacity` req/s through SLOTS in-flight slots, by a server that, where `down` = (from, refused, back),
    answers nothing from its first time on (but breaks one stream of every 40 half a second after it is sent),
    refuses every request waiting at its second (the restart: "Connection refused") and every one sent until its
    third, then answers again."""
    ends: list[float] = []  # the end of each request sent, for the slot each frees
    free, rows = 0.0, []
    for arrival in np.arange(0.0, WINDOW_S, 1.0 / RATE):
        sent = max(arrival, sorted(ends)[-SLOTS] if len(ends) >= SLOTS else 0.0)
        begin = max(sent, free)
        if down and down[0] <= begin:
            if begin < down[1] and len(rows) % 40 == 0:  # a stream the stopped server broke: f12's few errors
                end, ok = sent + 0.5, 0.0
            elif begin < down[1]:  # waiting when the server went: refused at the restart
                end, ok = down[1] + 0.01 * (len(rows) % 50) / 50, 0.0
            elif sent < down[2]:
                end, ok = sent + 0.001, 0.0  # refused at once while it restarts
            else:
                free = begin + 1.0 / capacity
                end, ok = free + 0.004, 1.0
        else:
            free = begin + 1.0 / capacity
            end, ok = free + 0.004, 1.0
        ends.append(end)
        if end < WINDOW_S:
            rows.append((START + end, (end - arrival) * 1000.0, ok, (sent - arrival) * 1000.0))
    return np.array(rows)


def step(rows: np.ndarray) -> LoadResult:
    """An open-loop step of `rows`, summarized as `loadtest.step_result` does (its SLOTS slots all taken)."""
    ok = rows[:, 2] > 0.5
    latency = LatencySummary.from_samples(rows[ok, 1])
    result = LoadResult("digits_int8", "127.0.0.1:1", "open", 1, WINDOW_S, len(rows), int((~ok).sum()), 0.0, 0, latency)
    result.rate_rps, result.arrivals, result.offered_requests = RATE, "constant", int(RATE * WINDOW_S)
    result.timeline = per_second(rows, START, START + WINDOW_S)
    result.outages = outages(rows, START, START + WINDOW_S)
    lags = rows[:, 3]
    result.send_lag_p50_ms, result.send_lag_p99_ms = float(np.percentile(lags, 50)), float(np.percentile(lags, 99))
    result.generator_lag_p99_ms, result.max_in_flight, result.peak_in_flight = 2.0, SLOTS, SLOTS + 1
    return result


def test_the_probes_outage_filled_the_slots_and_the_note_says_so() -> None:
    result = step(samples(200.0, (DOWN, REFUSED, BACK)))
    (outage,) = result.outages
    assert round(outage.start_s, 1) == 4.1 and round(outage.end_s, 1) == 19.1
    assert stall(result.mode, result.latency, result.timeline) is None  # no stall to excuse the slots: f12's case
    assert (result.send_lag_p99_ms or 0.0) > 1000.0  # late: the slots filled during the outage
    note = result.send_lag_note() or ""
    window = f"no successful request for {outage.duration_s:.1f} s, t = {outage.start_s:.2f}–{outage.end_s:.2f} s"
    assert f"all 64 in-flight slots were taken during the outage ({window})" in note, note
    assert "the wait came from that outage, not the rate" in note
    assert note.endswith(OUTAGE_ADVICE)
    assert "--max-in-flight" not in note and "slower than the offered rate" not in note
    held = unsent_held_by(*result._client_lags(), *result._stalled(), result.outages, result.timeline)
    assert held is not None and "during the outage" in held and "not the rate's" in held


def test_a_server_slower_than_the_rate_throughout_keeps_the_rates_advice_beside_an_outage() -> None:
    """A server answering 30 req/s of the 40 offered: its slots fill before the outage and again after it."""
    result = step(samples(30.0, (DOWN + 8.0, REFUSED + 8.0, BACK + 4.0)))
    assert result.outages and (result.send_lag_p99_ms or 0.0) > 1000.0
    note = result.send_lag_note() or ""
    assert note.endswith(RATE_ADVICE), note
    assert "outage" not in note


def test_without_an_outage_the_rate_case_says_what_it_said() -> None:
    result = step(samples(30.0, None))
    assert not result.outages
    assert (result.send_lag_note() or "").endswith(RATE_ADVICE)
    lags = ClientLags(900.0, 1.0, 2.0, SLOTS + 1, SLOTS)
    assert (send_lag_note("m", lags, 10.0, outages=result.outages, timeline=result.timeline) or "").endswith(
        RATE_ADVICE
    )


def test_a_stall_whose_backlog_failed_is_named_as_the_stall() -> None:
    """No outage, a stall of seconds 5–13 answered at the offered 40 req/s after it (no drain to excuse the slots):
    its backlog failed in second 13, and outside it nothing waited."""
    timeline = [
        SecondStats(float(t), 1.0, 0 if 5 <= t < 14 else 40, 360 if t == 13 else 0, 5.0, 9.0, 40) for t in range(30)
    ]
    stalled = Stall(6000.0, 5.0, 5.0, 13.0, answered_after_rps=40.0, peak_offered_rps=40.0)
    lags = ClientLags(6000.0, 1.0, 2.0, SLOTS + 1, SLOTS)
    note = send_lag_note("m", lags, 10.0, stalled=stalled, offered_rps=RATE, outages=(), timeline=timeline) or ""
    assert "taken while the server answered nothing (5–13 s into the window)" in note, note
    assert "the wait came from that stall, not the rate" in note and "(see the stall note)" in note
