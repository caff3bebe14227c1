"""The closed-loop Locust user: one request in flight per user, the next sent when the answer comes, over a gRPC
client of its own used by one OS thread at a time (`loadtest.grpc_user`'s pitfalls, and what every user shares);
the open-loop user is in `loadtest.open_loop_user`. Import this module only inside a Locust process: importing
locust monkey-patches the interpreter.
"""

from __future__ import annotations

import itertools
import random
import time

import gevent
from gevent.event import AsyncResult
from locust import User, task

from loadtest.grpc_user import _TritonClientMixin, blocking_call_pool
from loadtest.recording import at_quit, record_unanswered, run_stopping, warm_up_ended, window_opened

# A closed-loop user whose request failed waits this long before the next, so an outage (server
# restarting, connection refused) is counted without spinning the load generator's CPU.
FAILURE_PAUSE_S = 0.05


class TritonGrpcUser(_TritonClientMixin, User):
    """Closed-loop user: sends one inference request, waits for the answer, repeats. Its first, a warm-up (its gRPC
    connect, the first inference: 40–44 ms vs a 2 ms p50), is not reported; the window waits for it (`recording`).

    A user started once the window is open (a stage's rise, a shape's) sends no warm-up: its first request is in the
    window, its connect part of the rise's cost, and Triton counts it (session 41: a rise to 200 users sent 198
    warm-ups that Triton counted in the window and no figure did). One a stage's ramp-down stops while it waits
    reports its answer when it comes (`_answer_after_stop`)."""

    abstract = True
    warms_up = True

    def on_start(self) -> None:
        clock, answered = list[float](), False  # the warm-up call's span (empty where it was never sent)
        late = window_opened()  # started by a stage inside the window: its requests are all measured
        try:
            self._configure()
            self._client, self._busy, self._sent_at, self._call = self._new_client(), False, 0.0, None
            self._pool, self._order = blocking_call_pool(extra_threads=1), itertools.cycle(range(len(self.requests)))
            for _ in range(random.randrange(len(self.requests))):  # users start at different samples: not all alike
                next(self._order)
            answered = False if late else self._warm_up(clock)
        finally:  # answered, failed, or never sent (a user that could not start): the window waits no more for it
            if not late:
                warm_up_ended(self.environment, clock, answered)

    def _warm_up(self, clock: list[float]) -> bool:
        """The user's first request, not reported: whether it was answered. A hung server's is recorded unanswered at
        the stop (`_busy` stays set)."""
        self._sent_at, self._busy = time.time(), True
        answered = self._send_unreported(self._client, clock)
        self._busy = False
        return answered

    def on_stop(self) -> None:
        call = getattr(self, "_call", None) if self._busy else None
        if call is not None and not run_stopping():  # a stage's ramp-down: its answer is still the window's
            gevent.spawn(self._answer_after_stop, call, self._clock, self._sent_at)
            return
        self._pool.maxsize = max(0, self._pool.maxsize - 1)
        if self._busy:  # stopped while waiting for an answer: a hung server leaves only this behind
            record_unanswered(self._sent_at, self.request_batch)  # its channel stays with its thread until exit
        else:
            self._client.close()

    def _answer_after_stop(self, call: AsyncResult, clock: list[float], sent_at: float) -> None:
        """A user a stage's ramp-down stopped (Locust kills its greenlet) while its request was in flight: the answer,
        or failure, reported when it comes, in the stage it came back in, and the user's OS thread and client given
        up only then. Dropped, a ramp-down from 200 users to 2 left 198 of Triton's answers uncounted, and the 2 users
        left waited for a thread behind them, outside their timed latency: 2 s in which no request was reported, read
        as a stall (session 41). One the run's stop comes before is noted unanswered, as every other user's it cuts."""
        take_back = at_quit(lambda: record_unanswered(sent_at, self.request_batch))  # the run quits before it ends
        call.wait()
        take_back()
        self._pool.maxsize = max(0, self._pool.maxsize - 1)
        if run_stopping():
            record_unanswered(sent_at, self.request_batch)
        else:
            self._report(call, clock)
        self._client.close()

    @task
    def infer(self) -> None:
        """One request, timed from when its OS thread sent it to when the answer came back (`_infer_blocking`)."""
        inputs = self.requests[next(self._order)]
        self._clock: list[float] = []  # the call's own span, read in its thread
        self._sent_at = time.time()
        self._busy = True
        self._call = self._pool.spawn(self._infer_judged, self._client, inputs, self._clock)
        self._report(self._call, self._clock)

    def _report(self, call: AsyncResult, clock: list[float]) -> None:
        """Report the request `call` runs once it ends: its answer, or its failure (never swallowed)."""
        try:
            size, failure = call.get(), None
        except Exception as exc:
            size, failure = 0, exc
        self._busy = False  # ended: a stop in the failure's pause below has nothing in flight to report again
        self._fire(clock[0] if clock else time.perf_counter(), clock, size, failure)
        if failure is not None:
            self._stop_if_gone()
            gevent.sleep(FAILURE_PAUSE_S)
