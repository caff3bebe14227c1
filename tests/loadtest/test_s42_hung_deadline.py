"""Requests that hit the client's deadline while the server answered nothing are named as a hung server, not as
slow requests or a crash on their cancellation.

Session 41: a soak of 2 users whose tritonserver was SIGSTOPped 40 s at ~12 s (serve's --hang-timeout killed and
restarted it): the note on its 2 deadline failures said to raise --request-timeout and blamed a Triton crash on
cancelled requests (server#7368).
"""

from __future__ import annotations

import numpy as np

from loadtest.recording_files import SAMPLE_COLUMNS
from loadtest.timeline import deadline_silence
from loadtest.window_notes import deadline_note

START = 1000.0
RESTARTED = "pid 16667 listened on its port at the start, pid 23681 at the end"


def _rows(ends: np.ndarray, latency_ms: float, ok: bool, deadline: bool = False) -> np.ndarray:
    rows = np.zeros((len(ends), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 7] = START + ends, latency_ms, float(ok), float(deadline)
    return rows


def _soak_hung() -> np.ndarray:
    """Answers every 10 ms to 11.69 s; two requests sent then (one 5 ms before the other's last answer) wait their
    30 s deadline; the server killed, refused connections to 49.6 s, answered again from there."""
    return np.concatenate(
        [
            _rows(np.arange(0.01, 11.69, 0.01), 9.0, True),
            _rows(np.array([41.689, 41.699]), 30004.0, False, deadline=True),
            _rows(np.arange(41.8, 49.6, 0.05), 1.0, False),
            _rows(np.arange(49.63, 70.0, 0.01), 9.0, True),
        ]
    )


def test_deadlines_through_a_silent_server_are_a_hang() -> None:
    silence = deadline_silence(_soak_hung(), START)
    assert silence is not None and abs(silence[0] - 11.68) < 0.02 and abs(silence[1] - 41.699) < 1e-6
    note = deadline_note("m @ 2 users", 2, 30.0, RESTARTED, None, silence) or ""
    assert "while the server answered no request at all for 30.0 s" in note and "it hung" in note
    assert RESTARTED in note and "--hang-timeout" in note
    assert "#7368" not in note and "raise it" not in note
    alone = deadline_note("m @ 2 users", 2, 30.0, None, None, silence) or ""
    assert "it hung" in alone and "raise it" not in alone and "#7368" not in alone


def test_a_millisecond_deadline_with_a_restart_still_names_the_cancel_crash() -> None:
    """--request-timeout 0.001 crashed the embedded Triton 2.51; serve restarted it (its failures wait 1 ms)."""
    rows = np.concatenate(
        [
            _rows(np.arange(0.01, 2.0, 0.01), 2.0, True),
            _rows(np.arange(2.0, 6.0, 0.001), 1.0, False, deadline=True),
        ]
    )
    silence = deadline_silence(rows, START)
    assert silence is None
    assert "#7368" in (deadline_note("d3 @ 4 users", 4000, 0.001, RESTARTED, None, silence) or "")


def test_a_slow_request_among_answers_is_slow_not_a_hang() -> None:
    """A 30 s deadline while the other users' requests were answered, and a model whose answers take about that
    long: slow, the old advice stands."""
    answered = _rows(np.arange(0.5, 60.0, 0.5), 400.0, True)
    among = np.concatenate([answered, _rows(np.array([40.0]), 30000.0, False, deadline=True)])
    slow = np.concatenate(
        [_rows(np.array([25.0, 50.0]), 25000.0, True), _rows(np.array([80.0]), 30000.0, False, deadline=True)]
    )
    for rows in (among, slow):
        assert deadline_silence(rows, START) is None
    assert "raise it" in (deadline_note("m @ 1 users", 1, 30.0, None, None, None) or "")


def test_a_saved_result_keeps_the_silence_for_its_notes() -> None:
    import dataclasses
    import json

    from loadtest.percentiles import LatencySummary
    from loadtest.results import LoadResult

    result = LoadResult(
        model="m", url="127.0.0.1:1", mode="closed", users=2, window_s=70.0, requests=4475, failed_requests=164,
        throughput_rps=61.6, inferences_per_s=61.6, latency=LatencySummary.from_samples(np.full(10, 9.0)),
        deadline_failures=2, request_timeout_s=30.0, server_restarted=RESTARTED, deadline_silence=(11.689, 41.699),
    )  # fmt: skip
    saved = LoadResult.from_dict(json.loads(json.dumps(dataclasses.asdict(result))))
    assert saved.deadline_silence == (11.689, 41.699)
    notes = " ".join(saved.notes())
    assert "it hung" in notes and "#7368" not in notes
