"""A stall no failure shows: a closed loop whose requests all waited through whole seconds in which none ended (a
tritonserver stopped 5 s: exit 0, p99 53.9 ms, no note before), or a few requests far slower than the rest while
others kept ending (a stopped Locust worker); and the deadline note that names Triton's crash on cancellations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult
from loadtest.timeline import SecondStats, per_second, quiet_seconds, stall
from loadtest.window_notes import deadline_note, stall_note

START = 5_000.0


def closed_loop(stall_from: float | None, stall_s: float, window_s: float = 20.0) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok) of 4 users answered every 10 ms; from `stall_from` (into the window)
    the server answers nothing for `stall_s`, then the 4 requests that waited end at once, `stall_s` late."""
    ends = np.arange(0.0, window_s, 0.01)
    latencies = np.full(ends.size, 10.0)
    if stall_from is not None:
        waiting = (ends >= stall_from) & (ends < stall_from + stall_s)
        ends, latencies = ends[~waiting], latencies[~waiting]
        stalled = np.full(4, stall_from + stall_s)
        ends, latencies = np.append(ends, stalled), np.append(latencies, np.full(4, stall_s * 1000 + 10))
    return np.column_stack([START + ends, latencies, np.ones(ends.size)])


def summarized(samples: np.ndarray, mode: str = "closed") -> LoadResult:
    """A closed-loop result of `samples`, as `loadtest.step_result` summarizes one: latency and per second."""
    latency = LatencySummary.from_samples(samples[:, 1])
    result = LoadResult("slow", "127.0.0.1:1", mode, 4, 20.0, len(samples), 0, len(samples) / 20, 0, latency)
    result.timeline = per_second(samples, START, START + 20.0)
    return result


def test_a_server_stopped_5_s_is_named_with_its_quiet_seconds_and_a_p99_that_hides_it() -> None:
    """The probe: SIGSTOP 6.1 s into a 20 s window for 5 s. Whole seconds 7–11 had no request end."""
    result = summarized(closed_loop(6.1, 5.0))
    assert result.latency.p99_ms == 10.0
    assert quiet_seconds(result.timeline) == (7.0, 11.0)
    assert stall_note(result.label, result.mode, result.latency, result.timeline) == (
        "slow @ 4 users: no request was answered for 4 whole seconds (7–11 s into the window) while its users waited; "
        "the slowest took 5010 ms (501× the p50 of 10.0 ms): the server or the load generator stalled; the p99 "
        "(10.0 ms) hides it"
    )


def test_a_stopped_worker_is_named_though_the_other_users_kept_finishing(tmp_path: Path) -> None:
    """Two of the four users frozen 5 s (a SIGSTOP'd Locust worker): every second still ended requests."""
    answered = closed_loop(None, 0.0)
    frozen = np.array([[START + 11.1, 5024.0, 1.0], [START + 11.1, 5020.0, 1.0]])
    result = summarized(np.concatenate([answered, frozen]))
    assert quiet_seconds(result.timeline) is None
    note = (
        "slow @ 4 users: the slowest request took 5024 ms (502× the p50 of 10.0 ms) while others kept being answered: "
        "some users stalled (a stopped Locust worker, a stuck model instance or connection); the p99 (10.0 ms) hides it"
    )
    assert stall_note(result.label, result.mode, result.latency, result.timeline) == note
    LoadRun("slow", [result]).save(tmp_path)  # the report's lines, from the saved file
    (loaded,) = LoadRun.load(tmp_path / "load-slow.json").results
    assert ("Stall", note) in step_lines([LoadRun("slow", [loaded])])


def test_no_stall_in_a_steady_loop_a_slow_model_or_a_quiet_start() -> None:
    steady = summarized(closed_loop(None, 0.0))
    assert stall_note(steady.label, steady.mode, steady.latency, steady.timeline) is None
    slow_model = LatencySummary.from_samples(np.array([2000.0] * 50 + [3000.0]))  # p50 2 s, the slowest 3 s
    assert stall("closed", slow_model, steady.timeline) is None
    stopped = summarized(closed_loop(6.1, 5.0), mode="open")  # an open loop's stall is named too (test_s28_open_stall)
    note = stall_note("open", stopped.mode, stopped.latency, stopped.timeline) or ""
    assert "no request was answered for 4 whole seconds (7–11 s" in note
    shy = [SecondStats(0.0, 1.0, 0, 0, float("nan"), float("nan")), *steady.timeline[1:]]
    assert quiet_seconds(shy) is None  # no second before it ended a request: a start, not a stall between


def test_a_deadline_with_the_server_restarted_names_tritons_crash_on_cancellations() -> None:
    """--request-timeout 0.001 crashed the embedded Triton 2.51 (SIGSEGV) in 3 of 3 runs; serve restarted it."""
    restarted = "pid 15620 listened on its port at the start, pid 17237 at the end"
    assert deadline_note("d3 @ 4 users", 302, 0.001, restarted) == (
        "d3 @ 4 users: 302 requests hit the client's 0.001 s deadline (--request-timeout): they were slow, not "
        "refused; raise it or send fewer samples a request (--request-batch); the server went down meanwhile: "
        "tritonserver before 2.53 (r24.12), such as the embedded 2.51, can crash on requests the client cancels at "
        "its deadline (triton-inference-server/server#7368)"
    )
    assert "#7368" not in (deadline_note("d3 @ 4 users", 302, 0.001) or "")
    assert deadline_note("d3 @ 4 users", 0, 0.001, restarted) is None
