"""Per-second throughput, failures and latency over a measured window, and the outages in it.

Built from the exact per-request records (end time, latency, ok) that every Locust process
keeps, not from Locust's `_stats_history.csv`: there `Requests/s` is a mean over the last ten
seconds that counts failed requests too, so a three-second outage shows as a shallow dip and
never as a gap. Here a second with no successful request is a second with zero throughput and
no latency point, and the requests that failed in it are counted. Outages are measured from the
requests' own end times, not from the seconds: a server killed 0.1 s into one second and back
0.9 s into another was down 3.8 s, not the 2 whole seconds between. A stall (`stall`) is the outage no failure
shows: a closed loop whose requests, all waiting, ended in none of some whole seconds; or an open loop whose
requests ended in none while some were in flight, sent and unanswered (those answered next had waited through
them), which also fills its in-flight slots: the send-lag note then blames the stall, not the rate
(`Stall.answered_after_rps`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loadtest.percentiles import LatencySummary, percentile
from loadtest.recording_files import DEADLINE_COLUMN

# A last bin shorter than this joins the one before it: a rate over a sliver of a second is noise.
MIN_LAST_BIN_S = 0.5
# Failures with no success between them make an outage when they span this long without a success (a second, as
# the per-second charts show one); shorter, they are failed requests among successes.
MIN_OUTAGE_S = 1.0
# A closed loop's slowest request this long, and this many times its p50, is a stall (`stall`): a second is the
# outage's own floor; 20× the median is far past a busy machine's jitter (a p99 here ran 4–6× the p50 of a busy
# two-core run) and keeps a slow model's ordinary requests (p50 2 s, 3 s at worst) out.
STALL_MIN_MS = 1000.0
STALL_FACTOR = 20.0
# An open loop's quiet seconds are a stall only where requests sent before them or in them were still in flight this
# share of the way through them (`waited_through`): they waited through it unanswered. A replayed trace's own idle gap,
# or a rate too low to end a request every second, has none in flight (a trace offering none in 1-2 s and 1500 in the
# next was called a stall, the burst's queueing read as a wait through the gap). A timeline recorded without its
# arrivals falls back to the first second after: its p99 at least this share of them. And only where
# they last STALL_FACTOR times the p50 of the second before them or more: an overloaded slow model answering in
# bursts is quiet between them, but no longer than its requests take. The open loop's own p50 is no yardstick: its
# stall's backlog is a share of the window's requests as large as the stall's of the window (5 s of 10 s: p50 1.5 s).
WAITED_SHARE = 0.5


@dataclass
class SecondStats:
    """One second of the window: successful and failed requests per second, latency of the successful ones."""

    t_s: float  # start of the second, from the start of the measured window
    width_s: float  # 1, or up to 1.5 for the window's last second
    ok: int  # requests that succeeded, ending in this second
    failed: int
    p50_ms: float  # NaN: no successful request ended in this second
    p99_ms: float
    arrived: int | None = None  # requests due to be sent in this second (their end less their latency); None: unknown
    # of `failed`, those the client gave up on at its own deadline (--request-timeout): no answer; None: not recorded
    gave_up: int | None = None

    @property
    def answered(self) -> int:
        """Requests the server answered that ended in this second, with a result or an error: those the client gave
        up on at its deadline had none."""
        return self.ok + self.failed - (self.gave_up or 0)

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.width_s

    @property
    def failed_per_s(self) -> float:
        return self.failed / self.width_s


@dataclass
class Outage:
    """A stretch of the window with requests failing and none succeeding, from the last success before it (or the
    window's start) to the first success after it (or the window's end)."""

    start_s: float
    end_s: float
    failed_requests: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def bin_edges(start: float, end: float) -> np.ndarray:
    """One-second bin edges from `start` to `end`; a last sliver under MIN_LAST_BIN_S joins the bin before."""
    span = end - start
    if span <= 1.0:
        return np.array([start, end])
    edges = start + np.arange(0.0, math.floor(span) + 1.0)
    if end - edges[-1] >= MIN_LAST_BIN_S:
        return np.append(edges, end)
    edges[-1] = end
    return edges


def per_second(samples: np.ndarray, start: float, end: float) -> list[SecondStats]:
    """`samples` rows of (end wall time, latency ms, 1 ok / 0 failed[, send lag ms]), ending in [start, end], per
    second."""
    if end <= start:
        return []
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples.reshape(len(samples), -1) if samples.size else np.zeros((0, 3))
    edges = bin_edges(start, end)
    ok = samples[:, 2] > 0.5
    index = _bin_index(edges, samples[:, 0])
    gave_up = (samples[:, DEADLINE_COLUMN] > 0.5) & ~ok if samples.shape[1] > DEADLINE_COLUMN else None
    arrivals = np.bincount(_bin_index(edges, samples[:, 0] - samples[:, 1] / 1000.0), minlength=len(edges) - 1)
    series = []
    for i in range(len(edges) - 1):
        here = index == i
        latencies = samples[here & ok, 1]
        t_s, width_s = round(float(edges[i] - start), 3), round(float(edges[i + 1] - edges[i]), 3)
        failed = int((here & ~ok).sum())
        p50, p99 = percentile(latencies, 50.0), percentile(latencies, 99.0)
        deadline = None if gave_up is None else int((here & gave_up).sum())
        series.append(SecondStats(t_s, width_s, int(latencies.size), failed, p50, p99, int(arrivals[i]), deadline))
    return series


def _bin_index(edges: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The bin of `edges` each of `times` falls in; those before the first or after the last go to it."""
    return np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(edges) - 2)


def outages(samples: np.ndarray, start: float, end: float) -> list[Outage]:
    """Each run of failed requests with no success between them, in the order they ended, that spans at least
    `MIN_OUTAGE_S` without a success: measured from the end time of the last successful request before its first
    failure (the window's start if none) to that of the first success after its last failure (the window's end if
    none), to the millisecond of the requests' own end times, not to whole seconds. `samples` rows are as
    `per_second`'s. A lone failure among successes is no outage; a quiet spell without failures is none either, nor
    a request the client gave up on while others were answered (`slow_not_down`)."""
    samples = np.asarray(samples, dtype=np.float64)
    if not samples.size:
        return []
    samples = samples.reshape(len(samples), -1)
    samples = samples[np.argsort(samples[:, 0], kind="stable")]
    samples = samples[~slow_not_down(samples)]
    ok = samples[:, 2] > 0.5
    # a run is the failures between two successes: each failure carries the number of successes that ended before it
    runs, failed = np.unique(np.cumsum(ok)[~ok], return_counts=True)
    success_times = np.concatenate([[start], samples[ok, 0], [end]])  # success k ends at success_times[k + 1]
    begins, finishes = success_times[runs], success_times[runs + 1]
    return [
        Outage(round(float(b - start), 3), round(float(f - start), 3), int(n))
        for b, f, n in zip(begins, finishes, failed, strict=True)
        if f - b >= MIN_OUTAGE_S
    ]


def deadline_silence(samples: np.ndarray, start: float) -> tuple[float, float] | None:
    """The span, in seconds from the window's `start`, through which the server answered no request while the ones
    that failed by the client's deadline waited (None: not so): every such request waited, and had seen no success
    end for, a second or more and STALL_FACTOR times the answered requests' median by its deadline, and a success
    had ended before it (the server was answering, then went silent). From the last success before the first of
    their deadlines to the last of them. That is a hung server, not a slow request: a soak of 2 users whose
    tritonserver was SIGSTOPped 40 s (session 41, p50 9 ms) had 2 requests wait their 30 s deadline with nothing
    answered from 11.69 s on (one was sent 5 ms before the other's last answer), and their note said to raise
    --request-timeout and blamed a crash on the cancellations. A slow model's deadline (others answered meanwhile,
    or waits near its median) and a deadline of a millisecond are no silence."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] <= DEADLINE_COLUMN or not len(samples):
        return None
    ok = samples[:, 2] > 0.5
    deadline = (samples[:, DEADLINE_COLUMN] > 0.5) & ~ok
    if not deadline.any() or not ok.any():
        return None
    successes, ends = np.sort(samples[ok, 0]), samples[deadline, 0]
    before = np.searchsorted(successes, ends, side="left")  # successes that ended before each deadline
    if (before == 0).any():
        return None
    last_answer = successes[before - 1]
    floor_s = max(MIN_OUTAGE_S, STALL_FACTOR * float(np.median(samples[ok, 1])) / 1000.0)
    if min(float((ends - last_answer).min()), float(samples[deadline, 1].min()) / 1000.0) < floor_s:
        return None
    return round(float(last_answer.min() - start), 3), round(float(ends.max() - start), 3)


def slow_not_down(samples: np.ndarray) -> np.ndarray:
    """Which rows are requests the client gave up on at its own deadline (--request-timeout) while the server kept
    answering: a success ended between the request's send (its end less its latency) and its failure. The server
    was slow on it, not down: no outage (a 30 s deadline among 40 s answers read as a 14 s outage). A deadline
    passed with no success during it stays a failure of the server to answer (a hung server)."""
    samples = samples.reshape(len(samples), -1)
    if samples.shape[1] <= DEADLINE_COLUMN or not len(samples):
        return np.zeros(len(samples), dtype=bool)
    ends, ok = samples[:, 0], samples[:, 2] > 0.5
    deadline = (samples[:, DEADLINE_COLUMN] > 0.5) & ~ok
    successes = np.sort(ends[ok])
    sent = ends - samples[:, 1] / 1000.0
    answered_meanwhile = np.searchsorted(successes, ends, side="right") > np.searchsorted(successes, sent, "left")
    return deadline & answered_meanwhile


@dataclass(frozen=True)
class Stall:
    """A step's slowest request against a p50 (`stall`: the step's, or an open loop's in the second before its
    stall), the longest run of whole seconds in which no request ended (None: other requests kept ending meanwhile),
    and an open loop's most requests answered a second after it (None: closed loop), the rate it drained its backlog
    at, and its busiest second's arrivals (None: closed loop, or not recorded), a burst's offered rate."""

    slowest_ms: float
    p50_ms: float
    quiet_from_s: float | None = None
    quiet_to_s: float | None = None
    answered_after_rps: float | None = None
    peak_offered_rps: float | None = None

    @property
    def quiet_seconds(self) -> float:
        return 0.0 if self.quiet_from_s is None or self.quiet_to_s is None else self.quiet_to_s - self.quiet_from_s


def stall(
    mode: str,
    latency: LatencySummary,
    timeline: list[SecondStats],
    stages: Sequence[LatencySummary] = (),
    busiest_rps: float | None = None,
) -> Stall | None:
    """A closed or staged loop's stall: its slowest successful request took STALL_MIN_MS or more and STALL_FACTOR
    times its p50 or more; a staged loop's (`stages`: each stage's latency) judged within each stage, against its own
    p50 (`stage_stall`). Every user there always waits on a request, so a whole second in which none ended (no
    success, no failure) means all of them waited at once: the server (or the one load generator) stopped; a slow
    request while others kept ending means some users waited (a stopped Locust worker, a stuck instance). A
    tritonserver stopped 5 s among 4 users: p99 53.9 ms, max 5014 ms, four empty seconds, no note before. An open
    loop's is `open_stall` (`busiest_rps`: its busiest second, where the step recorded it). None: no stall."""
    if mode == "open":
        return open_stall(latency, timeline, busiest_rps)
    judged = stage_stall(stages) if stages else (latency.max_ms, latency.p50_ms)
    if judged is None or not stalled(*judged):
        return None
    return Stall(*judged, *(quiet_seconds(timeline) or (None, None)))


def stalled(slowest_ms: float, p50_ms: float) -> bool:
    """Whether a slowest request is a stall against its p50 (STALL_MIN_MS, STALL_FACTOR)."""
    return slowest_ms >= STALL_MIN_MS and slowest_ms >= STALL_FACTOR * p50_ms


def stage_stall(stages: Sequence[LatencySummary]) -> tuple[float, float] | None:
    """A staged load's stall: the stage whose slowest request stands furthest past its own p50 (slowest, p50), of
    those that stalled (None: none did). The whole step's p50 is the quiet stages': README's spike (`--stages
    4:8s,32:5s,4:8s`) queued to a p99 of 1183 ms in its 32-user stage, read as users stalled (session 41)."""
    judged = [(stage.max_ms, stage.p50_ms) for stage in stages if stage.count and stalled(stage.max_ms, stage.p50_ms)]
    return max(judged, key=lambda pair: pair[0] / pair[1]) if judged else None


def open_stall(latency: LatencySummary, timeline: list[SecondStats], busiest_rps: float | None = None) -> Stall | None:
    """An open loop's stall: its longest run of quiet seconds that arrivals waited through and that lasted far longer
    than requests took just before it (WAITED_SHARE): --rate 200 against a server stopped 5 s, none answered in 3–8 s
    and 994 in the next. A slow request among others that kept ending is left to its send-lag note. None: no stall."""
    stalls = [run for run in quiet_runs(timeline) if waited_through(timeline, *run) and sudden(timeline, *run)]
    run = longest(stalls)
    if run is None:
        return None
    first, count = run
    peak = busiest_rps if busiest_rps is not None else peak_offered_rps(timeline)
    after = max(second.ok_per_s for second in timeline[first + count :])
    quiet = span(timeline, first, count)
    return Stall(latency.max_ms, timeline[first - 1].p50_ms, *quiet, answered_after_rps=after, peak_offered_rps=peak)


def peak_offered_rps(timeline: list[SecondStats]) -> float | None:
    """The most arrivals a whole second of the timeline offered, per second (of those that ended in the window); None:
    arrivals not recorded (or no second). A burst across a second's edge is split: the report's "busiest second" is
    `busiest_second_rps`, recorded with the step; this stands in for it in a file from before it (session 52)."""
    if not timeline or any(second.arrived is None for second in timeline):
        return None
    return max((second.arrived or 0) / second.width_s for second in timeline)


def busiest_second_rps(arrivals: np.ndarray, start: float, end: float) -> float | None:
    """The most of the `arrivals` (wall times) from `start` to `end` in any second from one of them, per second (a
    window under a second: in it, per second of it); None: an empty window. A sliding second, as the trace's own
    figure (`ArrivalTrace.peak_rate_rps`): whole-second bins split a burst across an edge, and one report's send-lag
    note said 662 req/s in its busiest second where its Trace line said 715/s (session 52)."""
    window_s = min(1.0, end - start)
    if window_s <= 0:
        return None
    within = np.sort(arrivals[(arrivals >= start) & (arrivals <= end)])
    return most_arrivals_within(within, window_s) / window_s


def most_arrivals_within(arrivals: np.ndarray, window_s: float) -> int:
    """The most of the sorted `arrivals` in any `window_s` that starts at one of them (from it, to before its end)."""
    if not len(arrivals):
        return 0
    ends = np.searchsorted(arrivals, arrivals + window_s, side="left")
    return int((ends - np.arange(len(arrivals))).max())


def waited_through(timeline: list[SecondStats], first: int, count: int) -> bool:
    """Whether requests were in flight WAITED_SHARE of the way into a quiet run (at the start of its second that far
    in): none ended in it, so they waited through the rest of it. A timeline without arrivals (an older result): whether
    the second after it answered requests that had waited WAITED_SHARE of it or more (its p99)."""
    if any(second.arrived is None for second in timeline):
        after = timeline[first + count]
        return after.p99_ms >= WAITED_SHARE * 1000.0 * (after.t_s - timeline[first].t_s)
    return in_flight_at(timeline, first + int(count * WAITED_SHARE)) > 0


def in_flight_at(timeline: list[SecondStats], index: int) -> int:
    """Requests sent before the start of the `index`th second and not ended by then (arrivals less those that ended),
    of those that ended in the window."""
    seconds = timeline[:index]
    return sum(second.arrived or 0 for second in seconds) - sum(second.ok + second.failed for second in seconds)


def sudden(timeline: list[SecondStats], first: int, count: int) -> bool:
    """Whether a quiet run lasted STALL_FACTOR times the p50 of the second before it or more (NaN: none succeeded)."""
    return 1000.0 * (timeline[first + count].t_s - timeline[first].t_s) >= STALL_FACTOR * timeline[first - 1].p50_ms


def quiet_seconds(timeline: list[SecondStats]) -> tuple[float, float] | None:
    """The longest run of seconds in which no request was answered, with a result or an error ((from, to) into the
    window; the first of equal runs), between seconds in which some were; None: every second had one."""
    run = longest(quiet_runs(timeline))
    return None if run is None else span(timeline, *run)


def quiet_runs(timeline: list[SecondStats]) -> list[tuple[int, int]]:
    """Each run of seconds in which no request was answered, between seconds in which some were: (its first second's
    index, how many seconds). A request the client gave up on at its deadline had no answer: counted as one, a server
    SIGSTOPped 8 s under a 3 s deadline read "no request finished for 2 whole seconds (7–9 s)" beside "8.7 s without
    a success (6.38–15.12 s)", the deadline failures filling 9–15 s (session 54)."""
    busy = [i for i, second in enumerate(timeline) if second.answered]
    return [(a + 1, b - a - 1) for a, b in itertools.pairwise(busy) if b - a > 1]


def longest(runs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The longest of (first index, seconds) runs, the first of equal ones; None: no run."""
    return max(runs, key=lambda run: (run[1], -run[0])) if runs else None


def span(timeline: list[SecondStats], first: int, count: int) -> tuple[float, float]:
    """(from, to) into the window of `count` seconds from the `first`."""
    last = timeline[first + count - 1]
    return timeline[first].t_s, round(last.t_s + last.width_s, 3)
