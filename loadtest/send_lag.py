"""Open-loop requests that left the client late: their latency then includes a wait the server never saw (the
generator's CPU, or every in-flight slot taken), so the figures are the client's too. Which part of the client held
them is decided here once (`send_lag_cause`), for loadtest's note (`LoadResult.send_lag_note` calls `send_lag_note`),
for tune's (`quantserve.cli.tune_verdict.send_lag_line`, which once said the same rules in its own copy), both
through `window_cause` of a step's `client_lags.ClientWindow` (tune's as its trials recorded each window), and for the
never-sent note, which names the same part (`unsent_held_by`). Slots full only while the server stalled
(`loadtest.timeline.Stall`) are the stall's wait, not the rate's: a server stopped 5 s under --rate 200 it answers
at 700 req/s was told to "raise --max-in-flight or lower the rate". Slots full only during an outage or a stall whose
backlog failed rather than drained, the server keeping up outside it, are the outage's (`outage_slots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.client_lags import ClientLags, ClientWindow, peak_in_flight, pool_full
from loadtest.timeline import Outage, SecondStats, Stall, in_flight_at

GENERATOR = "generator"  # the load generator woke late for most of the wait: its CPU
THREADS = "threads"  # slots stayed free: the client's own threads took the calls up late
SLOTS = "slots"  # every in-flight slot was taken (or the peak unrecorded: the rest of the wait is the slot wait)
UNRECORDED = "unrecorded"  # neither the generator's lag nor the peak in flight was recorded
STALLED = "stalled"  # every slot was taken while the server answered nothing, and it answered faster than offered after
OUTAGE = "outage"  # every slot was taken during an outage (or stall) only: outside it fewer requests waited than slots
QUEUE_FULL = "queue full"  # every slot was taken while the server's own queue refused requests: its capacity, not ours
# Triton's words for a request its queue policy refused: max_queue_size reached, or its timeout_us spent queued
QUEUE_REFUSALS = ("Exceeds maximum queue size", "Request timeout expired")
# a stall's quiet whole seconds lie inside it: it began up to a second before them and ended up to one after
STALL_EDGES_S = 2.0
# after a stall, a second with this many times the offered rate answered shows a server with capacity to spare: it
# drained the stall's backlog (one over capacity answers at most its capacity, below the rate, before and after)
SPARE_SHARE = 1.2
# a second offering this many times the window's mean rate or more is a burst: the full slots are its backlog, and
# the mean alone read as a server slower than a rate it answered twice over (a trace's 1500 arrivals in one second,
# 312 req/s on average, against 706 req/s answered); a Poisson rate's busiest second is within a fifth of its mean
BURST_SHARE = 2.0


def slots_words(limit: int | None, processes: int = 1) -> str:
    """`all 64 in-flight slots`; with --workers, every process's: `all 128 in-flight slots (64 in each of 2 Locust
    workers)`. A run of 2 workers said "all 64 in-flight slots were taken" while its 128 were (session 54)."""
    if not limit:
        return "all in-flight slots"
    if processes <= 1:
        return f"all {limit} in-flight slots"
    return f"all {limit * processes} in-flight slots ({limit} in each of {processes} Locust workers)"


def queue_refused(errors: dict[str, int]) -> int:
    """How many of a step's failed requests (Locust's `errors`: message → count) the server's queue refused."""
    return sum(count for message, count in errors.items() if any(words in message for words in QUEUE_REFUSALS))


@dataclass(frozen=True)
class SendLagCause:
    """Which part of the client held the late requests (`part`), said in loadtest's words (`words`: a clause to
    follow the note's head) and in tune's shorter ones (`short`: said in brackets after its own head)."""

    part: str
    words: str
    short: str


def send_lag_cause(lags: ClientLags, late_ms: float) -> SendLagCause | None:
    """The part of the client that held requests which left it over `late_ms` late at p99; None where none did.
    A pool its sent and unanswered requests filled at the end (`client_lags.pool_full`) is the pool's, however late
    the generator woke; else the generator's own lag, where it is the larger part of the wait, is its CPU; else, with
    slots free, the threads taking the calls up; else the full in-flight pool (the rest of the wait)."""
    p99, generator = lags.p99_ms, lags.generator_p99_ms
    peak, limit = peak_in_flight(lags), lags.max_in_flight
    if p99 is None or not p99 > late_ms:
        return None
    if pool_full(lags):
        return queue_full(lags) if lags.queue_refused else slots_taken(lags)
    if generator is not None and generator > late_ms and generator >= p99 / 2:  # the larger part of the wait
        return generator_behind(generator)
    if peak and limit and peak < limit:
        return threads_late(peak, limit, lags.processes)
    if (peak and limit) or generator is not None:
        return queue_full(lags) if lags.queue_refused else slots_taken(lags)
    return SendLagCause(
        UNRECORDED,
        "which part of the client held them was not recorded (the load generator's CPU or a full in-flight pool)",
        "the load generator's CPU or a full in-flight pool: not recorded",
    )


def generator_behind(generator_ms: float) -> SendLagCause:
    return SendLagCause(
        GENERATOR,
        f"the load generator fell behind its schedule (p99 {generator_ms:.0f} ms late, its CPU)",
        f"the load generator fell behind its schedule: p99 {generator_ms:.0f} ms late, its CPU",
    )


def threads_late(peak: int, limit: int, processes: int = 1) -> SendLagCause:
    """The slots were free: `peak` of a process's `limit` in use at most (of each worker's, with --workers)."""
    whose = "its" if processes <= 1 else "a worker's"
    of = "" if processes <= 1 else "a worker's "
    return SendLagCause(
        THREADS,
        f"at most {peak} of {whose} {limit} in-flight slots were in use, so the wait was the client's own threads "
        "taking the calls up late (its CPU, shared here with the server)",
        f"at most {peak} of {of}{limit} in-flight slots were in use: the client's own threads took the calls up late, "
        "its CPU shared with the server",
    )


def slots_taken(lags: ClientLags, why: str = "the server answered slower than the offered rate") -> SendLagCause:
    taken, generator_ms = slots_words(lags.max_in_flight, lags.processes), lags.generator_p99_ms or 0.0
    return SendLagCause(
        SLOTS,
        f"{taken} were taken, so requests waited for a free in-flight slot (the generator itself was "
        f"{generator_ms:.0f} ms late at p99): {why}",
        f"{taken} were taken: a burst's backlog beyond the in-flight cap",
    )


def queue_full(lags: ClientLags) -> SendLagCause:
    """Every slot taken while the server's own queue refused requests (a queue policy: max_queue_size, timeout_us):
    the server's capacity held them, and more --max-in-flight only hands its queue more to refuse (a run whose 95 % of
    requests failed 'Exceeds maximum queue size' was told to raise it)."""
    taken = slots_words(lags.max_in_flight, lags.processes)
    refused = f"the server's own queue was full ({lags.queue_refused} requests refused by it in the run)"
    return SendLagCause(
        QUEUE_FULL,
        f"{taken} were taken while {refused}, so requests waited for a free in-flight slot: the server answered "
        "slower than the offered rate",
        f"{taken} were taken while {refused}: the server's capacity was below the offered rate",
    )


def stalled_slots(
    cause: SendLagCause, lags: ClientLags, stalled: Stall | None, offered_rps: float | None
) -> SendLagCause:
    """`cause`, or where it is the full in-flight pool and the step stalled, the stall: after it the server answered
    SPARE_SHARE times the offered rate or more in a second (so the rate was within its capacity) and no request left
    later than the stall lasted (else the slots were full for more than it). The offered rate is the busiest second's
    where the stall recorded it: a burst of 1500 arrivals in a second against 706 req/s answered filled the slots
    itself, though the mean offered was 312 req/s."""
    after = stalled.answered_after_rps if stalled else None
    if cause.part != SLOTS or stalled is None or after is None or not offered_rps:
        return cause
    if after < SPARE_SHARE * max(offered_rps, stalled.peak_offered_rps or 0.0):
        return cause
    if (lags.p99_ms or 0.0) > 1000.0 * (stalled.quiet_seconds + STALL_EDGES_S):
        return cause
    taken = slots_words(lags.max_in_flight, lags.processes)
    quiet = f"{stalled.quiet_from_s:g}–{stalled.quiet_to_s:g} s into the window"
    return SendLagCause(
        STALLED,
        f"{taken} were taken while the server answered nothing ({quiet}), so requests waited for a free in-flight "
        f"slot: the wait came from that stall, not the rate (after it the server answered up to {after:.0f} req/s, "
        f"against {offered_rps:.4g} req/s offered)",
        f"{taken} were taken while the server stalled ({quiet}): the stall's wait, not the rate's",
    )


def outage_slots(
    cause: SendLagCause,
    lags: ClientLags,
    outages: Sequence[Outage],
    stalled: Stall | None,
    timeline: Sequence[SecondStats],
) -> SendLagCause:
    """`cause`, or where it is the full in-flight pool and the step had an outage (or a stall) that the slots' wait
    fits in, and at every second's start outside them fewer requests waited (sent and unanswered, or due and unsent)
    than the slots hold, that outage: the server kept up with the rate outside it. Its backlog failed ("Connection
    refused" while tritonserver restarted), so no faster drain after it shows (`stalled_slots`): a stub stopped 8 s
    and a restart under --rate 40, answered at 40 req/s before and after, were told to lower the rate (session 65)."""
    windows = [(o.start_s, o.end_s) for o in outages]
    if stalled and stalled.quiet_from_s is not None and stalled.quiet_to_s is not None:
        windows.append((stalled.quiet_from_s, stalled.quiet_to_s))
    if cause.part != SLOTS or not windows or not lags.max_in_flight:
        return cause
    longest = max(windows, key=lambda window: window[1] - window[0])
    if (lags.p99_ms or 0.0) > 1000.0 * (longest[1] - longest[0] + STALL_EDGES_S):
        return cause
    if not kept_up_outside(timeline, windows, lags.max_in_flight * lags.processes):
        return cause
    return outage_cause(lags, longest, [o for o in outages if (o.start_s, o.end_s) == longest])


def kept_up_outside(timeline: Sequence[SecondStats], windows: list[tuple[float, float]], slots: int) -> bool:
    """Whether fewer than `slots` requests waited at the start of each second outside the `windows` (from their start
    to a second after their end, STALL_EDGES_S / 2, for the last of a backlog's answers), and some second was; False
    where the timeline has no arrivals (a file from before them)."""
    if any(second.arrived is None for second in timeline):
        return False
    edge = STALL_EDGES_S / 2
    outside = [i for i, s in enumerate(timeline) if not any(a < s.t_s < b + edge for a, b in windows)]
    return bool(outside) and all(in_flight_at(list(timeline), i) < slots for i in outside)


def outage_cause(lags: ClientLags, window: tuple[float, float], outage: list[Outage]) -> SendLagCause:
    """The full in-flight pool named as the outage's (`outage`: the step's outage of that `window`; none where it is
    a stall's quiet seconds, named as the stall's, whose note the advice then points to)."""
    taken, (start, end) = slots_words(lags.max_in_flight, lags.processes), window
    what = "outage" if outage else "stall"
    during = (
        f"during the outage (no successful request for {end - start:.1f} s, t = {start:.2f}–{end:.2f} s)"
        if outage
        else f"while the server answered nothing ({start:g}–{end:g} s into the window)"
    )
    return SendLagCause(
        OUTAGE if outage else STALLED,
        f"{taken} were taken {during}, so requests waited for a free in-flight slot: the wait came from that {what}, "
        "not the rate (outside it fewer requests waited than the slots hold: the server kept up with the rate offered)",
        f"{taken} were taken {during}: the {what}'s wait, not the rate's",
    )


def burst_slots(
    cause: SendLagCause, lags: ClientLags, peak_offered_rps: float | None, offered_rps: float | None
) -> SendLagCause:
    """`cause`, or where it is the full in-flight pool and the window's busiest second offered BURST_SHARE times its
    mean rate or more, the same pool named as that burst's backlog."""
    if cause.part != SLOTS or not peak_offered_rps or not offered_rps or peak_offered_rps < BURST_SHARE * offered_rps:
        return cause
    burst = f"a burst offered {peak_offered_rps:.0f} req/s in its busiest second (against {offered_rps:.4g} req/s mean)"
    return slots_taken(lags, f"{burst}, more than the server answered")


def unsent_held_by(
    lags: ClientLags,
    late_ms: float,
    stalled: Stall | None,
    offered_rps: float | None,
    outages: Sequence[Outage] = (),
    timeline: Sequence[SecondStats] = (),
) -> str | None:
    """The part of the client that held the late requests, in short, where it is not the full in-flight pool (whose
    words the never-sent note has of its own): the stall (`stalled_slots`), the outage (`outage_slots`: the step's
    `outages` and `timeline`), the generator's CPU, or the threads. The
    never-sent note names it, not a cause of its own: beside a send-lag note blaming the generator's CPU, a Pareto
    trace's never-sent note blamed "the server's capacity or that limit" and advised raising --max-in-flight."""
    cause = send_lag_cause(lags, late_ms)
    if cause is None:
        return queue_full(lags).short if lags.queue_refused else None  # arrivals waited: the slots were taken
    cause = outage_slots(stalled_slots(cause, lags, stalled, offered_rps), lags, outages, stalled, timeline)
    return cause.short if cause.part in (STALLED, OUTAGE, GENERATOR, THREADS, QUEUE_FULL) else None


def send_lag_note(
    label: str,
    lags: ClientLags,
    late_ms: float,
    workers: int = 0,
    cores: int | None = None,
    stalled: Stall | None = None,
    offered_rps: float | None = None,
    peak_offered_rps: float | None = None,
    outages: Sequence[Outage] = (),
    timeline: Sequence[SecondStats] = (),
) -> str | None:
    """One line when requests left the client over `late_ms` late at p99, naming which part of the client held
    them and what would help (`workers`: the run's Locust workers, 0 for one local process; `cores`: those the client
    may use (its CPU affinity), None where not recorded; `stalled`: the step's stall, `loadtest.timeline.stall`, None
    where none; `offered_rps`: the rate the window offered; `peak_offered_rps`: its busiest second's arrivals,
    `loadtest.timeline.peak_offered_rps`, None where not known; `outages` and `timeline`: the step's, for
    `outage_slots`)."""
    window = ClientWindow(lags, stalled, offered_rps, peak_offered_rps, tuple(outages), tuple(timeline))
    return window_note(label, window, late_ms, workers, cores)


def window_note(
    label: str, window: ClientWindow, late_ms: float, workers: int = 0, cores: int | None = None
) -> str | None:
    """`send_lag_note` of a step's `window` (`LoadResult.client_window`)."""
    cause = window_cause(window, late_ms)
    if cause is None:
        return None
    lags = window.lags
    head = (
        f"{label}: requests left the client up to {lags.p99_ms:.0f} ms after their arrival time "
        f"(p99; p50 {lags.p50_ms or 0.0:.1f} ms), and their latencies include that wait: "
    )
    return f"{head}{cause.words}; {advice(cause.part, workers, cores)}"


def window_cause(window: ClientWindow, late_ms: float) -> SendLagCause | None:
    """The one reading of which part of the client held a step's late requests: `send_lag_cause` of its lags, then
    a full pool named as its stall's (`stalled_slots`), its outage's (`outage_slots`) or its burst's (`burst_slots`).
    Loadtest's note and tune's line (`quantserve.cli.tune_verdict.send_lag_line`, from the windows its trials
    recorded) both say it; None where none left over `late_ms` late at p99."""
    lags, offered = window.lags, window.offered_rps
    cause = send_lag_cause(lags, late_ms)
    if cause is None:
        return None
    cause = stalled_slots(cause, lags, window.stalled, offered)
    cause = outage_slots(cause, lags, window.outages, window.stalled, window.timeline)
    return burst_slots(cause, lags, window.peak_offered_rps, offered)


def advice(part: str, workers: int, cores: int | None) -> str:
    """What a loadtest run can change, by the part that held the requests; for the generator, beyond the --workers
    already used where the cores allow more (as many workers as cores would only share the same CPU)."""
    if part == SLOTS:
        return "raise --max-in-flight or lower the rate"
    if part == QUEUE_FULL:
        return "lower the rate or give the server more capacity; more --max-in-flight would only be refused too"
    if part == STALLED:
        return "find why the server stopped answering (see the stall note), then measure again for figures without it"
    if part == OUTAGE:
        return "find why the server stopped answering (see the outage note), then measure again for figures without it"
    if part != GENERATOR:
        return "run the load from another machine, or read these latencies as the client's too"
    if workers <= 1:
        return "spread the load (--workers N) or run the client on another machine"
    if cores is None or workers < cores:
        return f"more --workers than the {workers} used, or run the client on another machine"
    return f"run the client on another machine (its {workers} --workers already match the {cores} cores it may use)"
