"""Requests the client gave up on at its own deadline (--request-timeout) that Triton still answered are counted by
Triton, not by the client: no deploy or other client to blame, Triton's figures kept, and the deadline line says how
many it answered anyway. Measured (session 44): 6146 requests, 2266 DEADLINE_EXCEEDED; Triton counted 5107 successes
to the client's 3880, and loadtest blamed "a version unloaded or reloaded … another client's load", dropping Triton's
columns, with no deploy and no other client."""

from __future__ import annotations

from test_server_counters import client_result, measured, scrape

from loadtest.recording_files import Window


def test_answers_given_up_on_at_the_clients_deadline_are_no_deploy() -> None:
    window = Window(0.0, 20.0, scrape(v1=(14, 14)), scrape(v1=(14 + 5107, 2000)))
    result = client_result(6146, failed=2266, users=16)
    result.deadline_failures, result.request_timeout_s = 2266, 0.01
    result = measured(result, window)
    assert result.server is not None and result.server_counters_left_out is None
    line = result.deadline_line() or ""
    assert line.startswith("m @ 16 users: 2266 requests hit the client's 0.01 s deadline (--request-timeout)")
    assert "Triton still answered up to 1227 of them after the client had given up (counted there)" in line


def test_more_than_the_given_up_ones_still_names_the_counters() -> None:
    window = Window(0.0, 20.0, scrape(v1=(14, 14)), scrape(v1=(14 + 9000, 2000)))
    result = client_result(6146, failed=2266, users=16)
    result.deadline_failures = 2266
    result = measured(result, window)
    assert result.server is None and "another client's load adds to them" in (result.server_counters_left_out or "")
