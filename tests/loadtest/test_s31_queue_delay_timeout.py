"""A client deadline within the model's queue delay (session 31, issue 11): `--request-timeout 1` against a model
deployed with max_queue_delay 2 s, loaded by 2 users who never fill its preferred batch: every request failed and the
note advised fewer samples a request. loadtest reads the delay from the model's config, warns before the run and
names it as the cause in the deadline note.
"""

from __future__ import annotations

from loadtest.percentiles import LatencySummary
from loadtest.queue_delay import max_queue_delay_s, queue_delay_note
from loadtest.results import LoadResult

CONFIG = {
    "max_batch_size": 32,
    "dynamic_batching": {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": "2000000"},
}


def test_the_queue_delay_is_read_from_the_served_config_as_triton_writes_it() -> None:
    assert max_queue_delay_s(CONFIG) == 2.0
    assert max_queue_delay_s({"max_batch_size": 32}) is None
    assert max_queue_delay_s({"dynamic_batching": {}}) is None


def test_a_deadline_within_the_queue_delay_is_said_before_the_run() -> None:
    assert queue_delay_note("slowq", 1.0, 2.0) == (
        "--request-timeout 1 s is at or below model slowq's max_queue_delay of 2 s: Triton holds a request up to "
        "that long to fill a preferred batch, so where too few requests arrive to fill one they fail by the client's "
        "deadline; raise --request-timeout above 2 s"
    )
    assert queue_delay_note("slowq", 2.5, 2.0) is None
    assert queue_delay_note("slowq", 1.0, None) is None


def _failed(queue_delay_s: float | None) -> LoadResult:
    latency = LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    result = LoadResult("slowq", "127.0.0.1:8001", "closed", 2, 5.0, 10, 10, 0.0, 0.0, latency)
    result.deadline_failures, result.request_timeout_s, result.queue_delay_s = 10, 1.0, queue_delay_s
    return result


def test_the_deadline_note_names_the_queue_delay_as_the_cause() -> None:
    said = [note for note in _failed(2.0).notes() if "deadline (--request-timeout)" in note]
    assert said == [
        "slowq @ 2 users: 10 requests hit the client's 1 s deadline (--request-timeout): they were slow, not refused; "
        "the deadline is at or below the model's max_queue_delay of 2 s, which Triton holds a request up to for a "
        "preferred batch that too few requests fill; raise --request-timeout above 2 s (or load with more users)"
    ]
    plain = [note for note in _failed(0.5).notes() if "deadline (--request-timeout)" in note]
    assert plain[0].endswith("raise it or send fewer samples a request (--request-batch)")
