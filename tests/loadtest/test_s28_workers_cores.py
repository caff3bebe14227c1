"""More Locust worker processes than the client's cores is said: the probe's `--workers 5` on 2 cores ran 6 Locust
processes on them (600 req/s offered against 751 from one process) with no word of it. Said once a run, before any
load (`quantserve.cli.loadtest_start.before_load`), not among each step's notes (tests/loadtest/test_s30_*)."""

from __future__ import annotations

from loadtest.window_notes import workers_note

FIVE_ON_TWO = (
    "--workers 5 on 2 cores: the client's 6 Locust processes (master and workers) share the cores, "
    "and may bound the load they offer; use at most --workers 2, or run the client on another machine"
)


def test_more_workers_than_cores_is_said() -> None:
    assert workers_note(5, 2) == FIVE_ON_TWO
    assert "1 core:" in (workers_note(2, 1) or "")


def test_workers_within_the_cores_one_process_or_cores_unrecorded_say_nothing() -> None:
    assert workers_note(2, 2) is None and workers_note(0, 2) is None and workers_note(5, None) is None
    assert workers_note(1, 4) is None
