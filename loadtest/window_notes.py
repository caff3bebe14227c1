"""Notes on what a step's figures rest on: how many requests its p99 stands on, the requests its window's end cut
off, and the requests the client itself gave up on at its deadline. Pure functions of a result's recorded counts
(`loadtest.results.LoadResult.notes` calls them), apart so each can be judged without a run.
"""

from __future__ import annotations

# a p99 is a tail figure from this many successful requests on: below, it lies between their two slowest (linear
# interpolation between closest ranks, `loadtest.percentiles`), so it is their slowest one, not a tail
TAIL_REQUESTS = 100
# closed loop: requests cut at the window's end are reported from this share of the answered ones (each user has
# one on its way at the stop: 16 users of a 2 ms model over 10 s cut 16 of some 80 000, nothing to say; 6 users of
# a 30 s model over 40 s cut 3 of 8)
CUT_SHARE = 0.05


def tail_note(label: str, successes: int) -> str | None:
    """One line when the p99 rests on fewer than TAIL_REQUESTS successful requests (none: no figure, no note)."""
    if not 0 < successes < TAIL_REQUESTS:
        return None
    requests = "request" if successes == 1 else "requests"
    return (
        f"{label}: p99 rests on {successes} successful {requests}: it is their slowest one, not a tail (that takes "
        f"{TAIL_REQUESTS} or more); run longer (--duration) for a tail figure"
    )


def cut_note(label: str, mode: str, cut: int, answered: int, cut_max_ms: float | None) -> str | None:
    """Closed loop (and stages): one line when the requests on their way at the window's end, dropped by the stop
    and in no figure, are CUT_SHARE or more of those answered. Each is a request that had not finished: the longer
    requests take, the likelier they are cut, so few answered against these the latencies lean to the quick ones
    and the throughput leaves out the work the server was doing on them."""
    if mode == "open" or not cut or cut < CUT_SHARE * answered:
        return None
    waited = f" (sent up to {cut_max_ms / 1000:.1f} s before)" if cut_max_ms is not None else ""
    were = "request was" if cut == 1 else "requests were"
    return (
        f"{label}: {cut} {were} still on their way when the window ended{waited}, against {answered} answered: "
        "they are in no count or latency, so the figures lean to the quicker requests and the throughput leaves out "
        "the server's work on these; lengthen --duration"
    )


def deadline_note(label: str, count: int, timeout_s: float | None) -> str | None:
    """One line when requests failed by the client's own deadline (--request-timeout): the client gave up on them;
    the server had not refused them."""
    if not count:
        return None
    limit = f"{timeout_s:g} s " if timeout_s else ""
    requests = "request" if count == 1 else "requests"
    return (
        f"{label}: {count} {requests} hit the client's {limit}deadline (--request-timeout): they were slow, not "
        "refused; raise it or send fewer samples a request (--request-batch)"
    )
