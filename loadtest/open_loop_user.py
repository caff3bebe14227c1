"""The open-loop Locust user: requests fired on an arrival schedule (a rate, constant or Poisson, or a recorded
trace's arrivals) whether or not earlier ones returned, through a pool of gRPC clients, each used by one OS thread at
a time (`loadtest.grpc_user`'s pitfalls). Import this module only inside a Locust process: importing locust
monkey-patches the interpreter.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

import gevent
import numpy as np
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Group
from gevent.queue import SimpleQueue
from locust import User, task

from loadtest.arrival_trace import ArrivalTrace
from loadtest.grpc_user import _TritonClientMixin, blocking_call_pool, request_inputs
from loadtest.load_pattern import ARRIVALS, rate_arrivals
from loadtest.locust_options import replayed_trace
from loadtest.pending_arrivals import PendingArrivals
from loadtest.recording import (
    SCHEDULE_LEAD_S,
    at_quit,
    record_unanswered,
    schedule_span,
    schedule_start,
    warm_up_ended,
)


class OpenLoopTritonUser(_TritonClientMixin, User):
    """Open-loop arrivals: fires requests on a schedule whether or not earlier ones returned.

    Latency counts from each request's scheduled arrival, so time spent waiting for a free in-flight slot is charged
    to the request (no coordinated omission). At most `max_in_flight` requests are in flight, each with its own
    greenlet and client; an arrival due while every slot is taken waits in the schedule itself, so nothing grows
    with the backlog (a greenlet and a client per waiting arrival grew one process by 40 MB/s): it leaves late when
    a slot frees, and those still due when the run stops are recorded as never sent; none due at or after the
    window's planned end is offered (`schedule_span`), however late Locust's stop comes. `rate` is this user's share
    of the total requests per second; `arrivals` is one of `loadtest.load_pattern.ARRIVALS`; with `--trace` the
    schedule is this user's share of a recorded trace's arrivals instead (read before the users spawn).

    Like a closed-loop user, it first sends one warm-up request, not reported (its gRPC connect and the server's
    first inference), and the window its schedule starts at waits for it (`recording`): a model whose first batch
    took 2 s held every arrival due meanwhile, and a 2 s window at 40 req/s answered none of its 83 arrivals.
    """

    abstract = True
    warms_up = True
    rate: float = 10.0
    arrivals: str = "constant"
    max_in_flight: int = 64

    def on_start(self) -> None:
        clock, answered = list[float](), False  # the warm-up call's span (empty where it was never sent)
        try:
            self._set_up()
            answered = self._warm_up(clock)
        finally:  # answered, failed, or never sent (a user that could not start): the window waits no more for it
            warm_up_ended(self.environment, clock, answered)

    def _set_up(self) -> None:
        self._warming: float | None = None  # while its warm-up is in flight: when it was sent
        self._configure()
        options = self.environment.parsed_options
        users = max(1, (options.rate_users or options.num_users or 1) if options is not None else 1)
        self._trace: ArrivalTrace | None = replayed_trace(options)
        # this user's share of the trace's arrivals or of the rate's: one user a worker process
        self._share = (getattr(self.environment.runner, "worker_index", 0), users)
        if self._trace is None and options is not None and options.rate:
            self.rate = options.rate / users
            self.arrivals = options.arrivals or self.arrivals
        if options is not None:
            self.max_in_flight = options.max_in_flight or self.max_in_flight
        if self.arrivals not in ARRIVALS:
            raise ValueError(f"unknown arrivals '{self.arrivals}' (use {' or '.join(ARRIVALS)})")
        self._pool = blocking_call_pool(extra_threads=self.max_in_flight)
        self._slots = Semaphore(self.max_in_flight)
        sizes = () if self._trace is None or self._trace.sizes is None else np.unique(self._trace.sizes)
        self._sized = {int(n): (request_inputs(self.data, int(n), self.model), itertools.count()) for n in sizes}
        self._order = itertools.cycle(range(len(self.requests)))
        self._rng = random.Random()
        self._in_flight = Group()
        self._pending = PendingArrivals()  # the schedule's position and the requests in the client, for the stop
        # recorded by the stop, or as the process quits where that comes first (SIGTERM: `recording.at_quit`)
        self._forget_at_quit = at_quit(lambda: self._pending.record_left(self.request_batch))
        self._idle_clients: SimpleQueue = SimpleQueue()

    def _warm_up(self, clock: list[float]) -> bool:
        """The user's first request, not reported, on the client the first arrival then takes: whether it was
        answered. A hung server's is recorded unanswered at the stop (`_warming` stays set)."""
        client = self._new_client()
        self._warming = time.time()
        answered = self._send_unreported(client, clock)
        self._warming = None
        self._idle_clients.put(client)
        return answered

    def on_stop(self) -> None:
        warming = getattr(self, "_warming", None)
        if warming is not None:  # stopped while its warm-up waited for an answer
            record_unanswered(warming, self.request_batch)
        if not hasattr(self, "_pending"):  # stopped before it was set up
            return
        self._forget_at_quit()
        self._pending.record_left(self.request_batch)  # still in the client: unanswered; queued or due: unsent
        self._in_flight.kill(block=False)
        self._pool.maxsize = max(0, self._pool.maxsize - self.max_in_flight)
        while not self._idle_clients.empty():
            self._idle_clients.get().close()

    def _schedule(self) -> Iterator[tuple[float, int]]:
        """Seconds from the start of each arrival and its request's samples (0: --request-batch): the trace's
        share, or this user's share of the rate, even (constant) or Poisson (`load_pattern.rate_arrivals`)."""
        if self._trace is not None:
            yield from self._trace.arrivals(*self._share)
            return
        share, shares = self._share
        # placed from the window's start, as the window's end bounds them (`schedule_span`): rate × window of them
        for offset in rate_arrivals(self.rate, self.arrivals, self._rng, share, shares, SCHEDULE_LEAD_S):
            yield offset, 0

    def _inputs(self, samples: int) -> list[Any]:
        """The next prebuilt request of `samples` samples (0: of --request-batch), cycling through the data."""
        if not samples:
            return self.requests[next(self._order)]
        requests, order = self._sized[samples]
        return requests[next(order) % len(requests)]

    @task
    def arrive(self) -> None:
        """From the window's start (`schedule_start`, every user's) to its planned end (`schedule_span`), take each
        arrival at its time into a free slot, then wait for the stop: none due later is offered, and the task run
        again would replay the schedule from its start. `freed`: when the last wait for a slot ended; one due
        before it was late because of the slots, not the CPU."""
        pending = self._pending
        pending.started = freed = schedule_start()
        span = schedule_span(self.environment.parsed_options)
        pending.arrivals = itertools.takewhile(lambda arrival: arrival[0] < span, self._schedule())
        for offset, samples in pending.arrivals:
            arrival = pending.started + offset
            pending.held = (arrival, samples)
            gevent.sleep(max(0.0, arrival - time.perf_counter()))
            woke = arrival + max(0.0, time.perf_counter() - max(arrival, freed))  # late by the generator's own part
            # its user's requests in flight as it arrived, itself included: one that found every slot taken counts
            # max_in_flight + 1 (it waits for a slot), how a run's peak tells a full pool (`unsent_cause`)
            in_flight = self.max_in_flight - self._slots.counter + 1
            full = self._slots.locked()
            self._slots.acquire()  # all taken: the arrivals due meanwhile stay in the schedule, to leave late
            freed = time.perf_counter() if full else freed
            pending.held = None
            self._in_flight.spawn(self._request, arrival, woke, self._inputs(samples), samples, in_flight)
        Event().wait()  # the schedule is spent: its requests still in flight end, or the stop cuts them

    def _request(self, scheduled: float, woke: float, inputs: list[Any], samples: int = 0, in_flight: int = 0) -> None:
        """One arrival's request, in the slot `arrive` took for it (given back however it ends)."""
        try:
            self._send(scheduled, woke, inputs, samples, in_flight)
        finally:
            self._slots.release()

    def _send(self, scheduled: float, woke: float, inputs: list[Any], samples: int, in_flight: int) -> None:
        client = self._idle_clients.get() if not self._idle_clients.empty() else self._new_client()
        sent = [scheduled]  # when an OS thread took the call
        clock: list[float] = []  # the call's own span (`_infer_blocking`); latency runs from the arrival to its end

        def call() -> int:
            sent[0] = time.perf_counter()
            self._pending.send(id(sent), arrived, samples)  # sent: from here on it waits on the server
            return self._infer_judged(client, inputs, clock)

        size, failure = 0, None
        arrived = time.time() - (time.perf_counter() - scheduled)  # the arrival as wall time
        self._pending.queue(id(sent), arrived, samples)
        try:
            size = self._pool.spawn(call).get()
        except Exception as exc:
            failure = exc
        finally:
            self._pending.end(id(sent))
        lags = (sent[0] - scheduled) * 1000.0, (woke - scheduled) * 1000.0
        self._fire(scheduled, clock, size, failure, *lags, samples, in_flight)
        if failure is not None:
            self._stop_if_gone()
        self._idle_clients.put(client)  # not reached when killed mid-call: that channel stays with its thread
