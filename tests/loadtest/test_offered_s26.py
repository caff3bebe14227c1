"""An open loop far over capacity: its arrivals on their way at the window's end are at most what its in-flight
slots hold; the young arrivals queued behind a full pool were never sent, and are counted so.

A trace at 4812 req/s through --max-in-flight 64 to a server answering ~600 read "1253 on their way at the end"
(session 26): 33 sent, 1220 due in the window's last quarter second (younger than UNSENT_FLOOR_MS) and still queued
behind 20245 older unsent arrivals, never sent. The total added up; the label was false.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadtest.load_pattern import OpenLoop
from loadtest.load_settings import LoadSettings
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, read_window
from loadtest.step_result import _result_of_window

START, END = 1_000.0, 1_010.0
SLOTS = 4  # --max-in-flight


def _record(record: Path) -> None:
    """A 10 s window at 100 arrivals a second (1000 due in it, the k-th at START + 0.01 k - 0.005) through processes
    of SLOTS in-flight slots each, every one taken (an arrival found the pool full: SLOTS + 1 in flight):
    300 answered in it, 2 sent and unanswered at the stop, 1 answered after it, 697 never sent (25 of them due in
    its last quarter second)."""
    record.mkdir()
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": END}))
    due = START + 0.01 * np.arange(1, 1001) - 0.005
    answered = np.zeros((301, SAMPLE_COLUMNS))
    answered[:, 0], answered[:, 1], answered[:, 2], answered[:, 6] = due[:301] + 0.3, 300.0, 1.0, SLOTS + 1
    answered[300, 0] = END + 0.01  # answered after the window's end
    np.save(record / "latencies-1.npy", answered)
    stop, sent = END + 0.02, np.array([END - 0.1, END - 0.05])
    np.save(
        record / "unanswered-1.npy",
        np.column_stack([np.full(2, stop), (stop - sent) * 1000.0, np.ones(2), due[301:303]]),
    )
    np.save(record / "unsent-1.npy", np.column_stack([due[303:], np.ones(697)]))


@pytest.mark.parametrize(("users", "on_way"), [(1, SLOTS), (2, 2 * SLOTS)], ids=["one-process", "2-workers"])
def test_arrivals_queued_behind_a_full_pool_are_never_sent_not_on_their_way(
    tmp_path: Path, users: int, on_way: int
) -> None:
    record = tmp_path / "raw"
    _record(record)
    step = OpenLoop(100.0)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), dtype=np.float32))
    settings = LoadSettings("127.0.0.1:1", "m", data, step, duration_s=10.0, workers=users if users > 1 else 0)
    settings.max_in_flight = SLOTS
    result = _result_of_window(settings, step, record, read_window(record), tmp_path / "locust" / "none")
    # 672 unsent due 0.25 s or more before the end; of the 28 left (3 sent, 25 due in the last quarter second and
    # queued), as many as the slots hold are on their way, the rest never sent
    counts = (result.requests, result.unsent, result.in_flight_at_end, result.cut_at_end)
    assert (result.offered_requests, counts) == (1000, (300, 700 - on_way, 0, on_way))
    assert result.offered_requests == result.requests + result.unsent + result.cut_at_end + result.in_flight_at_end
    slots = (
        f"all {SLOTS} in-flight slots"
        if users == 1
        else f"all {on_way} in-flight slots ({SLOTS} in each of 2 Locust workers)"
    )
    note = (
        f"m @ 100 req/s constant: offered 1000 requests, 300 answered, {on_way} on their way at the end, "
        f"{700 - on_way} never sent: {slots} were taken (--max-in-flight {SLOTS})"
    )
    assert (result.unsent_note() or "").startswith(note), result.unsent_note()
