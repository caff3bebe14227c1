"""Notes on the requests a step's window ended without an answer to: sent and long unanswered (a server that stopped
answering), open-loop arrivals never sent (they waited in the client behind a server slower than the offered rate),
and requests still in flight from a model slower than the window. Neither the counts nor the latencies show them.
Pure functions of a result's recorded counts (`loadtest.results.LoadResult.notes` calls them), apart so each can
be judged without a run and that module stays under the size the style asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.send_lag import slots_words


@dataclass(frozen=True)
class OfferedRequests:
    """What became of an open-loop step's offered arrivals: `offered` (None: not counted), answered, failed, on
    their way at the end (cut by the window's end or in flight), answered or failed in the window though they
    arrived before it opened, and never sent."""

    offered: int | None
    answered: int
    failed: int
    on_way: int
    arrived_before: int
    unsent: int


def unanswered_note(label: str, count: int, oldest_ms: float | None) -> str | None:
    """One line when `count` requests were still waiting at the window's end, the oldest sent `oldest_ms` before,
    over twice as long as any answered one took (or, none answered, while the server answered nothing)."""
    if not count or oldest_ms is None:
        return None
    return (
        f"{label}: {count} request(s) sent still had no reply when the window ended, the oldest sent "
        f"{oldest_ms / 1000:.1f} s before, over twice as long as any answered request took: the "
        "server stopped answering (hung, or overloaded past the window); they count as failed, and the latency "
        "figures, of answered requests, do not show them"
    )


def unsent_note(
    label: str,
    requests: OfferedRequests,
    max_in_flight: int | None,
    peak_in_flight: int | None,
    held_by: str | None = None,
    processes: int = 1,
) -> str | None:
    """One line when open-loop arrivals were never sent: they waited in the client behind a server slower than
    the offered rate (or its full in-flight slots: `unsent_cause`), or behind what the send-lag note blames (`held_by`,
    `loadtest.send_lag.unsent_held_by`: a stall, the generator's CPU, the client's threads), which it names too.
    `processes`: the Locust processes that sent, each with `max_in_flight` slots."""
    if not requests.unsent:
        return None
    failed = f"{requests.failed} failed, " if requests.failed else ""
    cut = f"{requests.on_way} on their way at the end, " if requests.on_way else ""
    before = requests.arrived_before
    earlier = f" ({before} of them arrived before the window opened)" if before else ""
    cause = held_by or unsent_cause(max_in_flight, peak_in_flight, processes)
    return (
        f"{label}: offered {requests.offered} requests, {requests.answered} answered{earlier}, {failed}{cut}"
        f"{requests.unsent} never sent: {cause} (they waited in the client when the run stopped; the latency figures, "
        "of answered requests, do not show them)"
    )


def unsent_cause(limit: int | None, peak_in_flight: int | None, processes: int = 1) -> str:
    """Why arrivals waited. An arrival that found every in-flight slot taken counts itself over the `limit`: then
    the client's --max-in-flight held them as much as the server (by Little's law a full pool serves exactly
    what the server answers, so the two cannot be told apart from one run); else the server's capacity."""
    if limit and peak_in_flight and peak_in_flight > limit:
        one = limit == 1 and processes <= 1
        slots = "the 1 in-flight slot was" if one else f"{slots_words(limit, processes)} were"
        return (
            f"{slots} taken (--max-in-flight {limit}): the server's capacity or that "
            "limit was below the offered rate (raise --max-in-flight to tell which, or lower the rate)"
        )
    return "the server's capacity was below the offered rate"


def in_flight_note(label: str, count: int, longest_ms: float | None, failed: int) -> str | None:
    """One line when `count` requests were still waiting at the end of a window in which nothing was answered, from
    a server that still answered: the model is slower than the window, not failing (`failed`: the step's failed
    requests; then the failure note says how)."""
    if not count or longest_ms is None:
        return None
    requests = f"{count} request{'s' if count > 1 else ''}"
    head = f"{label}: {requests} still in flight at the end, waited {longest_ms / 1000:.1f} s"
    if failed:  # the server answered, with errors: not a model slower than the window
        return f"{head}, while the step's other requests failed (the failure note says how)"
    return f"{head}: the model answers slower than the window; lengthen --duration"
