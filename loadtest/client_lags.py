"""What an open-loop run recorded of its client (`ClientLags`): how late its requests left, the in-flight pool, and
the requests that pool still held when the window ended. The peak in flight of the answered requests alone missed a
full pool: at 3x a server's capacity through --max-in-flight 2000, the answered (all arrived in the first 3.5 s) saw
972 in flight, while 2000 sent and unanswered filled the pool at the end and 2583 arrivals waited behind it; the
notes blamed the generator's 125 ms lag, "its CPU" (session 65). `pool_full` and `peak_in_flight` count them.
`ClientWindow` is all a step's send-lag reading reads (`send_lag.window_cause`), kept as JSON in tune's trials.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.recording_files import UNSENT_FLOOR_MS
from loadtest.timeline import Outage, SecondStats, Stall

# `unanswered_at_end` counts arrivals due in the window's last UNSENT_FLOOR_MS and not yet sent as on their way: a
# generator late by its p99 still owed about the rate times that lag of them, slots free or not. A pool is read as
# full only where what it owed is under this share of the slots (then at least the rest of them were taken): at 420
# req/s a generator 309 ms late owed 130 arrivals, twice 64 slots, and the slots cannot be told from it
OWED_SHARE = 0.1


@dataclass(frozen=True)
class ClientLags:
    """What an open-loop run recorded of its requests' lag: the send lag's p99 and p50, the generator's own p99, the
    most in flight at once and the limit (None: not recorded), and the requests sent and unanswered when the window
    ended and those never sent (`pool_full`)."""

    p99_ms: float | None
    p50_ms: float | None = None
    generator_p99_ms: float | None = None
    peak_in_flight: int | None = None
    max_in_flight: int | None = None
    queue_refused: int = 0  # requests the server's own queue refused (`send_lag.queue_refused`)
    processes: int = 1  # the Locust processes that sent, each with `max_in_flight` slots of its own (--workers)
    unanswered_at_end: int = 0  # sent and unanswered when the window ended: overdue, failed unanswered, on their way
    unsent: int = 0  # arrivals never sent
    offered_rps: float | None = None  # the rate the window offered (None: not known)


@dataclass(frozen=True)
class ClientWindow:
    """All that the send-lag reading (`send_lag.window_cause`) reads of one open-loop step: its client's `lags`
    (the unanswered and unsent at the end among them), its stall, the rate it offered and its busiest second's, and
    its outages and per-second timeline. Tune's trials carry one per window (`Trial.client_windows`): with the lags
    alone, tune blamed the generator for a pool the unanswered filled and for slots an outage held (session 66)."""

    lags: ClientLags
    stalled: Stall | None = None
    offered_rps: float | None = None
    peak_offered_rps: float | None = None
    outages: tuple[Outage, ...] = ()
    timeline: tuple[SecondStats, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientWindow:
        """As `to_json` wrote it, its NaN p50/p99 (a second with no success) back from the null JSON holds."""
        stalled = data.get("stalled")
        return cls(
            ClientLags(**_known(ClientLags, data["lags"])),
            Stall(**_known(Stall, stalled)) if stalled else None,
            data.get("offered_rps"),
            data.get("peak_offered_rps"),
            tuple(Outage(**_known(Outage, outage)) for outage in data.get("outages") or []),
            tuple(_second(second) for second in data.get("timeline") or []),
        )


def _known(kind: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data`'s entries that are fields of the dataclass `kind`: a later file's new ones are skipped."""
    names = {f.name for f in dataclasses.fields(kind)}
    return {name: value for name, value in data.items() if name in names}


def _second(data: Mapping[str, Any]) -> SecondStats:
    second = _known(SecondStats, data)
    return SecondStats(**{**second, **{k: math.nan for k in ("p50_ms", "p99_ms") if second.get(k) is None}})


def pool_full(lags: ClientLags) -> bool:
    """Whether every in-flight slot (every process's) was taken when the window ended, by requests sent and still
    unanswered: the pool, not the generator, held what waited then. Not where the arrivals a late generator still
    owed could make up a tenth of the slots or more (`OWED_SHARE`)."""
    slots = (lags.max_in_flight or 0) * lags.processes
    owed = (lags.offered_rps or 0.0) * min(lags.generator_p99_ms or 0.0, UNSENT_FLOOR_MS) / 1000.0
    return bool(slots) and lags.unanswered_at_end >= slots and owed < OWED_SHARE * slots


def peak_in_flight(lags: ClientLags) -> int | None:
    """The most requests in flight at once, counting those unanswered at the end (`peak_with_unanswered`)."""
    return peak_with_unanswered(
        lags.peak_in_flight, lags.max_in_flight, lags.unanswered_at_end, lags.unsent, lags.processes
    )


def peak_with_unanswered(
    peak: int | None, limit: int | None, unanswered: int, unsent: int, processes: int = 1
) -> int | None:
    """The `peak` in flight at an answered request's arrival (itself included), or the `unanswered` at the end where
    more (a process's share): `limit` + 1 where they filled every slot and arrivals were `unsent`, as an arrival that
    found every slot taken counts itself. None where no limit was recorded (a closed loop)."""
    if not limit:
        return peak
    held = limit + 1 if unsent and unanswered >= limit * processes else min(limit, -(-unanswered // max(1, processes)))
    return max(peak or 0, held) or None
