"""A window that gevent's timer ended a fraction of a millisecond before its planned end ran to plan (session 43):
with --workers, the same SIGINT after the window was saved "partial" or "complete" by chance."""

from __future__ import annotations

from loadtest.recording_files import Window


def test_a_window_ending_a_millisecond_early_ran_to_plan_and_one_cut_short_did_not() -> None:
    assert Window(100.0, 104.9992, None, None, planned_end=105.0).ran_to_plan
    assert Window(100.0, 105.3, None, None, planned_end=105.0).ran_to_plan
    assert not Window(100.0, 104.5, None, None, planned_end=105.0).ran_to_plan
    assert not Window(100.0, 105.0, None, None).ran_to_plan  # no planned end: cut by its stop
