"""Notes on what a step's figures rest on: how many requests its p99 stands on, the requests its window's end cut
off, the requests the client itself gave up on at its deadline, its commonest errors, other models' load on the
same server, a stall no failure shows (closed or open loop), and more Locust processes than the client's cores.
Pure functions of a result's recorded counts (`loadtest.results.LoadResult.notes` calls them), apart so each can be
judged without a run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from loadtest.percentiles import LatencySummary
from loadtest.queue_delay import queue_delay_cause, within_queue_delay
from loadtest.timeline import STALL_FACTOR, STALL_MIN_MS, SecondStats, Stall, stall

# a p99 is a tail figure from this many successful requests on: below, it lies between their two slowest (linear
# interpolation between closest ranks, `loadtest.percentiles`): just under the slowest, not a tail (2 requests of
# 4.73 and 38.62 ms gave 38.29 ms, and a note that called it their slowest one)
TAIL_REQUESTS = 100
# requests cut at the window's end are reported from this share of the answered ones (a closed loop's users have
# one on its way each at the stop: 16 users of a 2 ms model over 10 s cut 16 of some 80 000, nothing to say; 6 users
# of a 30 s model over 40 s cut 3 of 8; an open loop's, its rate times their latency)
CUT_SHARE = 0.05
# an error message's numbers (a length, a request id, an address): messages equal but for them are one error
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+")
MESSAGE_CHARS = 200  # an error message is cut to this many characters in the failure note
# of which its head keeps this many, and its end the rest: a backend's cause comes last (ONNX Runtime's "Status
# Message: indices element out of data bounds, idx=1000 ..." was cut at "Status Message: indic…")
MESSAGE_HEAD_CHARS = 80
# other models' requests over the window from which their load is said to share the server (fewer: a health check,
# one infer, nothing the figures would show)
OTHER_LOAD_FLOOR = 10
# who waited through a stall's quiet seconds: a closed loop's users; an open loop's arrivals, answered late after them
WAITING = ("its users waited", "requests kept arriving (those answered next had waited through them)")
# Triton's gRPC frontend before r24.12 (2.53) can crash on requests the client cancels, as a deadline does
# (triton-inference-server/server#7368, fixed by #7840 in r24.12): the wheel's 2.51 died by SIGSEGV in 3 of 3 runs
# of 4 users at --request-timeout 0.001
CANCEL_CRASH = (
    "the server went down meanwhile: tritonserver before 2.53 (r24.12), such as the embedded 2.51, can crash on "
    "requests the client cancels at its deadline (triton-inference-server/server#7368)"
)


def tail_note(label: str, successes: int) -> str | None:
    """One line when the p99 rests on fewer than TAIL_REQUESTS successful requests (none: no figure, no note)."""
    if not 0 < successes < TAIL_REQUESTS:
        return None
    what = "requests: it is interpolated between their two slowest"
    if successes == 1:
        what = "request: it is that request's latency"
    return (
        f"{label}: p99 rests on {successes} successful {what}, not a tail (that takes "
        f"{TAIL_REQUESTS} or more); run longer (--duration) for a tail figure"
    )


def cut_note(label: str, mode: str, cut: int, answered: int, cut_max_ms: float | None, unsent: int = 0) -> str | None:
    """One line when the requests on their way at the window's end, dropped by the stop and in no figure, are
    CUT_SHARE or more of those answered. Each is a request that had not finished: the longer requests take, the
    likelier they are cut, so few answered against these the latencies lean to the quick ones and the throughput
    leaves out the work the server was doing on them. An open loop's with arrivals never sent (`unsent`) are said by
    the never-sent note (`unanswered_notes.unsent_note`); without, by none: a server stopped 8 s in a 20 s open loop
    at 50 req/s left 49 backlogged arrivals cut at the end, 6 % of 823 answered, with no word (session 54)."""
    if (mode == "open" and unsent) or not cut or cut < CUT_SHARE * answered:
        return None
    waited = f" (sent up to {cut_max_ms / 1000:.1f} s before)" if cut_max_ms is not None else ""
    were = "request was" if cut == 1 else "requests were"
    return (
        f"{label}: {cut} {were} still on their way when the window ended{waited}, against {answered} answered: "
        "they are in no count or latency, so the figures lean to the quicker requests and the throughput leaves out "
        "the server's work on these; lengthen --duration"
    )


def deadline_note(
    label: str,
    count: int,
    timeout_s: float | None,
    restarted: str | None = None,
    queue_delay_s: float | None = None,
    silence: Sequence[float] | None = None,
    answered: int = 0,
    early: int = 0,
) -> str | None:
    """One line when requests failed by the client's own deadline (--request-timeout): the client gave up on them;
    the server had not refused them. Where the deadline is within the model's queue delay (`queue_delay_s`), that is
    named as the cause. Where the server answered no request at all while they waited (`silence`, seconds into the
    window: `loadtest.timeline.deadline_silence`), it hung: that is the cause, and where tritonserver was replaced
    too (`restarted`, `LoadResult.server_restarted`) the replacement followed the hang (`quantserve serve` kills a
    server silent past --hang-timeout), so a longer deadline would not have helped. Otherwise, where tritonserver was
    replaced or stopped in the window, the cancellations are the likely cause (CANCEL_CRASH). `answered`: how many
    more successes Triton counted than the client (at most `count`): it finished them after the client gave up.
    `early`: how many of them gRPC ended with DEADLINE_EXCEEDED before 0.99 of the deadline had passed (the server's
    side gave up on them first, `grpc_user._past_deadline`)."""
    if not count:
        return None
    limit = f"{timeout_s:g} s " if timeout_s else ""
    requests = "request" if count == 1 else "requests"
    line = f"{label}: {count} {requests} hit the client's {limit}deadline (--request-timeout)"
    if early:
        line += (
            f" ({early} of them ended with DEADLINE_EXCEEDED before it had passed on the client's clock: the "
            "server's side, passed the deadline by gRPC, may give up first)"
        )
    if silence is not None:
        begin, end = silence[0], silence[1]
        line += (
            f" while the server answered no request at all for {end - begin:.1f} s (t = {begin:.2f}–{end:.2f} s): "
            "it hung, they were not slow"
        )
        if restarted:
            return line + (
                f", and it was replaced ({restarted}: `quantserve serve` restarts a server silent past its "
                "--hang-timeout, its log says so); a longer deadline would not have helped"
            )
        return line + "; find why it stopped answering (see the outage note): a longer deadline would only wait longer"
    why = "raise it or send fewer samples a request (--request-batch)"
    if within_queue_delay(timeout_s, queue_delay_s):
        why = queue_delay_cause(queue_delay_s or 0.0)
    line += f": they were slow, not refused; {why}"
    if answered:
        line += f"; Triton still answered up to {answered} of them after the client had given up (counted there)"
    return line + (f"; {CANCEL_CRASH}" if restarted else "")


def errors_clause(errors: dict[str, int], failed: int) -> str:
    """The failure note's account of Locust's error table: its commonest error, messages that differ only in their
    numbers (a trimmed length, a request id: "got [1,7]", "got [1,8]") counted as one, and how many other distinct
    errors. Only a table that counts more than the window's failures is said to cover Locust's whole run: counting
    split messages apart made one length's 38 of 216 failures read as failures after the window."""
    if not errors:
        return ""
    groups = error_groups(errors)
    count, message, variants = groups[0]
    text = _shown(message, variants)
    rest = ""
    if len(groups) == 2:  # the other one named: "1 other distinct error" hid a shutdown's "no available versions"
        rest = f"; and {groups[1][0]} × {_shown(groups[1][1], groups[1][2])}"
    elif len(groups) > 2:
        rest = f"; {len(groups) - 1} other distinct errors ({sum(g[0] for g in groups[1:])} ×)"
    if sum(errors.values()) > failed:  # Locust's table also counts requests that failed after the window closed
        return f"; Locust counted {count} × {text} over its whole run, after the window too{rest}"
    return f"; {count} × {text}{rest}"


def _shown(message: str, variants: int) -> str:
    """An error message cut to MESSAGE_CHARS (its head and its end, where the cause is), and how many messages
    differing only in their numbers it stands for."""
    tail = MESSAGE_CHARS - MESSAGE_HEAD_CHARS - 3
    text = message if len(message) <= MESSAGE_CHARS else f"{message[:MESSAGE_HEAD_CHARS]} … {message[-tail:]}"
    return text + (f" ({variants} messages that differ only in their numbers, counted as one)" if variants > 1 else "")


def error_groups(errors: dict[str, int]) -> list[tuple[int, str, int]]:
    """Locust's errors grouped by their message with its numbers stripped, commonest first: (count, the group's
    commonest message, how many distinct messages it holds)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for message, count in errors.items():
        groups.setdefault(_NUMBER.sub("#", message), []).append((count, message))
    ranked = [(sum(c for c, _ in members), max(members)[1], len(members)) for members in groups.values()]
    return sorted(ranked, key=lambda group: -group[0])


def other_load_note(label: str, others: dict[str, int], requests: int) -> str | None:
    """One line when Triton counted OTHER_LOAD_FLOOR or more requests of the server's other models over the window
    (another client's load test on another model): they shared its CPU, so the server's CPU/memory figures are
    theirs too, and the latencies (client and Triton's queue and compute) include their load."""
    total = sum(others.values())
    if total < OTHER_LOAD_FLOOR:
        return None
    busiest = sorted(others.items(), key=lambda item: -item[1])
    named = ", ".join(f"'{name}' {count}" for name, count in busiest[:3])
    more = f" and {len(busiest) - 3} more" if len(busiest) > 3 else ""
    return (
        f"{label}: Triton served other models during the measured window ({named}{more} requests, against this "
        f"step's {requests}): the server's CPU and memory figures are theirs too, and the latencies include their "
        "load; for this model's own, run it with the server otherwise idle"
    )


def stall_note(
    label: str, mode: str, latency: LatencySummary, timeline: list[SecondStats], stages: Sequence[LatencySummary] = ()
) -> str | None:
    """One line when a step stalled (`loadtest.timeline.stall`): the whole seconds in which no request was answered
    (those the client gave up on at its deadline had no answer) while its users waited (an open loop's: while
    requests kept arriving), or (none such) that others kept being answered, the slowest request against the p50,
    and whether the p99 hides it (below the stall's own threshold: the step's figures alone look fine)."""
    found = stall(mode, latency, timeline, stages)  # a staged load's judged stage by stage
    if found is None:
        return None
    before = " just before it" if mode == "open" else ""  # an open loop's stall inflates its own p50 (`open_stall`)
    slowest = (
        f"{found.slowest_ms:.0f} ms ({found.slowest_ms / found.p50_ms:.0f}× the p50 of {found.p50_ms:.1f} ms{before})"
    )
    if found.quiet_from_s is not None:
        seconds = found.quiet_seconds
        head = (
            f"{label}: no request was answered for {seconds:g} whole second{'s' if seconds != 1 else ''} "
            f"({found.quiet_from_s:g}–{found.quiet_to_s:g} s into the window{_gave_up(timeline, found)}) while "
            f"{WAITING[mode == 'open']}; the slowest took {slowest}: the server or the load generator stalled"
        )
    else:
        head = (
            f"{label}: the slowest request took {slowest} while others kept being answered: some users stalled (a "
            "stopped Locust worker, a stuck model instance or connection)"
        )
    hidden = latency.p99_ms < max(STALL_MIN_MS, STALL_FACTOR * found.p50_ms)  # alone, the p99 is no stall
    return head + (f"; the p99 ({latency.p99_ms:.1f} ms) hides it" if hidden else "")


def _gave_up(timeline: list[SecondStats], found: Stall) -> str:
    """`; N failed meanwhile at the client's deadline`: the requests the client gave up on in a stall's quiet seconds
    (`SecondStats.gave_up`), no answer; "" where none did."""
    begin, end = found.quiet_from_s, found.quiet_to_s
    if begin is None or end is None:
        return ""
    count = sum(second.gave_up or 0 for second in timeline if begin <= second.t_s < end)
    return f"; {count} failed meanwhile at the client's deadline" if count else ""


def workers_note(workers: int, cores: int | None) -> str | None:
    """One line, once a run, when --workers asks for more Locust worker processes than the cores this client may use
    (its CPU affinity; None: unknown): they and the master share those cores, so the client's CPU may bound the load
    offered (--workers 5 on 2 cores offered 600 req/s where one process offered 751), with no other word of it."""
    if not cores or workers <= cores:
        return None
    return (
        f"--workers {workers} on {cores} core{'s' if cores != 1 else ''}: the client's {workers + 1} Locust "
        "processes (master and workers) share the cores, and may bound the load they offer; use at most "
        f"--workers {cores}, or run the client on another machine"
    )
