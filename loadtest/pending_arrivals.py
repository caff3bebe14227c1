"""The open-loop user's arrivals not yet answered, kept so that its stop records each where it stood.

An arrival is taken from the schedule when due (held while it waits for a free in-flight slot), queued once it has
a slot, and waiting on the server once an OS thread sent it. At the stop, those waiting are recorded unanswered
(the server's backlog) and those queued or overdue in the schedule as never sent (the client's), apart, so that a
client fallen behind its schedule is not blamed on the server. Apart from `loadtest.grpc_user` so that module
stays the users themselves and under the size the style asks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

from loadtest.recording import record_unanswered, record_unsent


class PendingArrivals:
    """One open-loop user's schedule position and its requests in the client, keyed by request (any unique int)."""

    def __init__(self) -> None:
        self.started = 0.0  # the schedule's start (perf_counter); 0: not started
        self.arrivals: Iterator[tuple[float, int]] = iter(())  # the schedule's (offset, samples) not yet taken
        self.held: tuple[float, int] | None = None  # taken from the schedule: (when due, perf_counter; samples)
        self._waiting: dict[int, tuple[float, int, float]] = {}  # request sent → (when, its samples, arrival): wall
        self._queued: dict[int, tuple[float, int]] = {}  # given a slot, not yet sent → (arrival as wall time; samples)
        self._recorded = False  # `record_left` ran: at the process's quit, or at the stop

    def queue(self, key: int, arrived: float, samples: int) -> None:
        """The request `key` has a slot and waits for an OS thread to send it; `arrived`: its arrival, wall time."""
        self._queued[key] = (arrived, samples)

    def send(self, key: int, arrived: float, samples: int) -> None:
        """The request `key` leaves the client now: from here on it waits on the server."""
        self._queued.pop(key, None)
        self._waiting[key] = (time.time(), samples, arrived)

    def end(self, key: int) -> None:
        """The request `key` was answered, failed, or was never sent: nothing left to record of it."""
        self._queued.pop(key, None)
        self._waiting.pop(key, None)

    def record_left(self, request_batch: int) -> None:
        """At the stop: those sent and still in the client as unanswered (the backlog), then those queued or
        overdue as never sent, recorded apart; a request of 0 samples has `request_batch`. Once: a SIGTERM records
        them as the process quits (`recording.at_quit`), and the users' stop comes after."""
        if self._recorded:
            return
        self._recorded = True
        for sent, samples, arrived in list(self._waiting.values()):
            record_unanswered(sent, samples or request_batch, arrived)
        for arrived, samples in [*self._queued.values(), *self.overdue()]:
            record_unsent(arrived, samples or request_batch)

    def overdue(self) -> Iterator[tuple[float, int]]:
        """Arrivals due by now that never got a slot, as (arrival wall time, samples): the one waiting for a slot,
        then those the schedule still holds (the client fell that far behind it)."""
        if not self.started:
            return
        now, wall = time.perf_counter(), time.time()
        later = ((self.started + offset, samples) for offset, samples in self.arrivals)
        due = itertools.chain([self.held] if self.held else [], later)
        for arrival, samples in itertools.takewhile(lambda pending: pending[0] <= now, due):
            yield wall - (now - arrival), samples
