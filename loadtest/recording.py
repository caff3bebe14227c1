"""Locust plumbing shared by the locustfiles: the measured window, raw latencies (the Triton options they take are
`loadtest.locust_options`', registered by importing this module).

Locust's own percentiles are rounded into buckets (1 ms steps below 100 ms), too coarse for a model that answers in
2 ms, so every process also keeps each request's exact latency and writes it to `--record-dir` on exit. The master (or
the single local process) marks the measured window — from "all users spawned and warm" to its planned end
(`planned_end`: --window-time's, or a shape's stages', `plan_window_end`), where the records end at Locust's stop
(`end`) — and scrapes Triton's metrics at both ends, so the server-side counters cover that window. Read back, the
window ends at its planned end or at the last answer after it, before the stop (`recording_files.measured_end`):
Locust's stop came 0.12-0.50 s after the last request, its hub held.

A closed-loop user's first request is a warm-up (its gRPC connect and first inference: 40–44 ms against a 2 ms p50),
never reported: the window opens only once every user's warm-up has ended, answered or failed (workers tell the
master with a Locust custom message), or `--request-timeout` + WARM_UP_CAP_MARGIN_S after the spawn, whichever is
first, so a hung model cannot hold it closed (nor a worker lost before its users warmed up: once Locust marks it
missing, `_live_workers_warm`); the window file records the warm-ups (`warm_up`). A user started once the window is
open (a stage's rise: `window_opened`) sends none; its first request is measured. An open-loop user sends one
warm-up too; its schedule starts when the window opens, all users' at its start (`schedule_start`; workers learn it
from the master's WINDOW_OPEN_MESSAGE), so no arrival precedes the window and a trace's t=0 is the window's start.

`--window-time N` ends a headless run N seconds after the window opens (all users spawned, Locust's
`spawning_complete`, and warm), so the window is the N seconds asked for at the full load. Locust's own
`-t` counts from the start of spawning (locust 2.x; a clock after the ramp was declined upstream,
locustio/locust#1352): its window was N less the ramp, 2.3–2.7 s of 4 behind a 1.5 s ramp.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import locust.stats
import numpy as np
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest import locust_options  # noqa: F401  - registers the Triton options
from loadtest.recording_files import UNANSWERED_PREFIX, UNSENT_PREFIX, WINDOW_FILE

# Locust rewrites its CSVs every CSV_STATS_INTERVAL_SEC (1 s) and does not write them again at
# exit, so the last second of a run was missing from them; 0.2 s keeps them within one tick of the window.
locust.stats.CSV_STATS_INTERVAL_SEC = 0.2  # type: ignore[assignment]

# (end wall time, latency ms, 1.0 ok / 0.0 failed, and for the open loop: send lag ms — how long after its
# arrival time it left the client — and generator lag ms — how late the generator woke for it; then the samples the
# request carried, and for the open loop its user's requests in flight when it arrived, itself included; then 1.0
# when it failed by the client's own deadline, --request-timeout; then the model version that answered it, 0 where
# it failed; then its length as sent, 0 where its padding was not cut). The end time is when its answer came back
# to the OS thread that sent it (`grpc_user`), not when its greenlet woke to report it.
_samples: list[tuple[float, ...]] = []  # `recording_files.SAMPLE_COLUMNS` values a request
_window: dict[str, Any] = {}
# Requests still waiting for their answer when the run stopped: (stop wall time, ms waited since sent, samples in
# the request, arrival wall time: open loop its scheduled arrival, else when it was sent). Locust drops them; a server
# that stopped answering leaves nothing else behind.
_unanswered: list[tuple[float, float, float, float]] = []
# Open-loop arrivals still waiting in the client for an in-flight slot when the run stopped, never sent: (arrival
# wall time, samples in the request). Their users knew them as a backlog; nothing else records them.
_unsent: list[tuple[float, float]] = []
_stopping: list[bool] = []  # the run is stopping (a user stopped before, by a stage of --stages, is not noted)
# What each live open-loop user still holds (its backlog), recorded by `save_latencies` before it writes: SIGTERM
# (an interrupted loadtest) fires Locust's `quitting` before its users stop, so their own stop came after the files
# were written, and a run at 1000 req/s interrupted 6.85 s in read 1358 offered of ~6850 scheduled, 0 never sent.
_at_quit: list[Callable[[], None]] = []
_environment: list[Environment] = []  # the process's Locust environment, captured at init
WARM_UP_MESSAGE = "quantserve_warm_up"  # a user → the master (or its own local runner): its warm-up ended
# the master → its workers: the window opened at data["start"] (wall time), reset Locust's stats
WINDOW_OPEN_MESSAGE = "quantserve_window_open"
# The open loop's schedule starts this long after the window opens: wall and perf_counter times, and their sums, differ
# by microseconds, and an arrival at the trace's t=0 must not fall before the window's start (`schedule_start`).
SCHEDULE_LEAD_S = 0.001
WARM_UP_CAP_MARGIN_S = 1.0  # past the client deadline (which ends every warm-up sent), the window opens anyway
_warm_ups: list[tuple[float, float, bool]] = []  # master or local: each user's warm-up (end wall time, ms, answered)
_warm_by_node: dict[str, int] = {}  # master: the warm-ups each worker's users told, by the worker's node id
WARM_UP_POLL_S = 0.5  # master: how often it looks whether every live worker's users are warm (a lost worker's are not)
_spawned: list[float] = []  # master or local: [wall time, users] of the first `spawning_complete`
_opening: list[bool] = []  # master or local: the window is opening (its first scrape under way)
_unfinished: list[str] = []  # master or local: why the window opened before every warm-up ended
_origin = gevent.event.AsyncResult()  # every process: the window's start (wall time), set once it opened


@events.init.add_listener
def remember_environment(environment: Environment, **_: Any) -> None:
    _environment[:] = [environment]
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(WINDOW_OPEN_MESSAGE, _window_opened)
    elif runner is not None:
        runner.register_message(WARM_UP_MESSAGE, _warm_up_ended)


@events.test_start.add_listener
def share_rate(environment: Environment, **_: Any) -> None:
    """Tell every worker the total user count, so each open-loop user fires `rate / users` per second."""
    options = environment.parsed_options
    if options is not None and not _is_worker(environment) and not options.rate_users:
        options.rate_users = options.num_users or 1


@events.request.add_listener
def record_request(
    response_time: float, exception: BaseException | None = None, context: dict | None = None, **_: Any
) -> None:
    lags = context or {}
    ok = 0.0 if exception else 1.0
    _samples.append(
        (
            float(lags.get("ended_at") or time.time()),
            float(response_time),
            ok,
            float(lags.get("send_lag_ms", 0.0)),
            float(lags.get("generator_lag_ms", 0.0)),
            float(lags.get("samples", 0.0)),
            float(lags.get("in_flight", 0.0)),
            float(lags.get("client_deadline") or 0.0) if exception else 0.0,  # 1.0, or EARLY_DEADLINE (2.0)
            float(lags.get("model_version") or 0.0),  # the version that answered (0: failed, or not said)
            float(lags.get("sent_length") or 0.0),  # its padded inputs' axis-1 width, cut (0: sent uncut)
        )
    )


def record_unanswered(sent_wall_time: float, samples: int, arrival_wall_time: float | None = None) -> None:
    """A user stopping with a request sent and not answered (`sent_wall_time`: `time.time()` when it left the
    client; `arrival_wall_time`, open loop: its scheduled arrival, which the window's offered count goes by): noted
    when the run is stopping."""
    if _stopping:
        now = time.time()
        arrived = sent_wall_time if arrival_wall_time is None else arrival_wall_time
        _unanswered.append((now, max(0.0, now - sent_wall_time) * 1000.0, float(samples), arrived))


def record_unsent(arrival_wall_time: float, samples: int) -> None:
    """A user stopping with an arrival (due at `arrival_wall_time`, as `time.time()`) it never sent: noted when the
    run is stopping."""
    if _stopping:
        _unsent.append((arrival_wall_time, float(samples)))


@events.test_stopping.add_listener
def note_stopping(**_: Any) -> None:
    """Fired in every Locust process before its users are stopped."""
    _stopping[:] = [True]


def run_stopping() -> bool:
    """Whether the run is stopping (its window closing): a user stopped before, by a stage, is not."""
    return bool(_stopping)


def window_opened() -> bool:
    """Whether this process knows the window opened: a user started after it (a stage's rise) is in the window."""
    return _origin.ready()


def at_quit(record_left: Callable[[], None]) -> Callable[[], None]:
    """Have `record_left` (a user's record of what it still holds) run as the process quits, before its records are
    written, unless the user's own stop ran it first: the function that takes it back (call it at that stop)."""
    _at_quit.append(record_left)
    return lambda: _at_quit.remove(record_left) if record_left in _at_quit else None


def _is_worker(environment: Environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def _scrape(environment: Environment) -> dict[str, Any] | None:
    options = environment.parsed_options
    if options is None or not options.metrics_url:
        return None
    from loadtest.triton_metrics import scrape
    from quantserve.errors import QuantserveError

    began = time.monotonic()
    try:
        return scrape(options.metrics_url)
    except QuantserveError as exc:  # a hung server: the load's own figures stand, its counters are not known
        _window.setdefault("metrics_errors", []).append(str(exc))
        return None
    finally:  # how long each end's scrape took to read: the answers then are Triton's alone (`Window.scrape_s`)
        _window.setdefault("scrape_s", []).append(time.monotonic() - began)


def warm_up_ended(environment: Environment, clock: list[float], answered: bool) -> None:
    """A user's warm-up request ended (`clock`: its call's span, `_infer_blocking`'s; empty where it was never sent):
    told to the master, or in one process to its own runner (`_warm_up_ended`)."""
    if _stopping:  # killed by the stop: the window is closing, not waiting
        return
    ms = (clock[1] - clock[0]) * 1000.0 if len(clock) >= 3 else 0.0
    end = clock[2] if len(clock) >= 3 else time.time()
    if environment.runner is not None:
        environment.runner.send_message(WARM_UP_MESSAGE, {"end": end, "ms": ms, "answered": answered})


def _warm_up_ended(environment: Environment, msg: Any, **_: Any) -> None:
    _warm_ups.append((float(msg.data["end"]), float(msg.data["ms"]), bool(msg.data["answered"])))
    node = str(getattr(msg, "node_id", ""))
    _warm_by_node[node] = _warm_by_node.get(node, 0) + 1
    if _spawned and len(_warm_ups) >= _spawned[1]:
        # in a greenlet of its own: this handler runs in Locust's message loop, which a slow first scrape (a hung
        # server's metrics, 5 s) held so long that both workers' heartbeats went unread, Locust marked them missing
        # and stopped the test before the window opened; the master never quit
        gevent.spawn(_open, environment)


def _live_workers_warm(environment: Environment) -> bool:
    """Master: every worker still reporting has had as many warm-ups told as it runs users. A worker Locust marked
    missing (killed, hung: no heartbeat for 3 s) runs none by Locust's count, so its users' warm-ups, which will
    never come, no longer hold the window closed: a worker SIGKILLed during the warm-ups kept it closed for the
    whole cap (31 s) before."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return False
    expected = getattr(environment.parsed_options, "expect_workers", 1)
    if not runner.clients.missing and len(runner.clients) >= expected:  # none lost: every user's warm-up counts
        return False
    return all(_warm_by_node.get(str(node.id), 0) >= node.user_count for node in runner.clients.all)


def _window_opened(environment: Environment, msg: Any, **_: Any) -> None:
    """A worker learns when the master opened the window (its open-loop schedules start there), and its Locust stats
    restart with the master's (what --reset-stats asked)."""
    _origin.set(float(msg.data["start"]))
    if environment.runner is not None and environment.reset_stats:
        environment.runner.stats.reset_all()


def schedule_start() -> float:
    """Open loop: where every user's schedule starts, as this process's `time.perf_counter()`: the window's start
    (and SCHEDULE_LEAD_S), one origin for all users and workers, so the trace's t=0 is the window's and no arrival
    precedes it. Waits (cooperatively) for the window to open; a user that starts later starts there too, its
    arrivals already due late, not lost. A schedule started at each user's spawn replayed arrivals before the window
    (58 of 258 answered in a 10 s window of a bursty trace) and shifted the users' shares of one trace apart."""
    origin = float(_origin.get()) + SCHEDULE_LEAD_S
    wall = time.time()  # read first: the perf_counter read after it maps to a wall time no earlier than `wall`
    return time.perf_counter() - (wall - origin)


def schedule_span(options: Any) -> float:
    """Open loop: how far past its start (`schedule_start`) a schedule offers arrivals: to the window's planned end,
    --window-time after it opened (math.inf: none planned). Locust's stop comes 70–90 ms later in one process, and a
    schedule run on to it offered a burst 0.02 s past a 5 s window's end: 136 arrivals "never sent", exit 1."""
    planned = float(getattr(options, "window_time", 0.0) or 0.0) if options is not None else 0.0
    return planned - SCHEDULE_LEAD_S if planned > 0 else math.inf


@events.spawning_complete.add_listener
def open_window(user_count: int = 0, **_: Any) -> None:
    """All users spawned: the window opens now, or once every user's warm-up has ended (`_warm_up_ended`), with a
    cap: the client deadline and a margin, which every warm-up sent ends by."""
    if not _environment or _is_worker(_environment[0]) or _spawned:
        return
    environment = _environment[0]
    _spawned[:] = [time.time(), user_count]
    if not _warms_up(environment) or len(_warm_ups) >= user_count:
        _open(environment)
        return
    options = environment.parsed_options
    cap = (options.request_timeout if options is not None else 30.0) + WARM_UP_CAP_MARGIN_S
    gevent.spawn_later(cap, _open_anyway, environment, cap)
    if isinstance(environment.runner, MasterRunner):
        gevent.spawn(_open_once_live_workers_warm, environment, time.monotonic() + cap)


def _open_once_live_workers_warm(environment: Environment, deadline: float) -> None:
    """Master: opens the window once every worker still reporting is warm (`_live_workers_warm`), before the cap."""
    while "start" not in _window and not _stopping and time.monotonic() < deadline:
        if _live_workers_warm(environment):
            _open(environment)
            return
        gevent.sleep(WARM_UP_POLL_S)


def _warms_up(environment: Environment) -> bool:
    """Whether the run's users send a warm-up first (`TritonGrpcUser.warms_up`, `OpenLoopTritonUser.warms_up`)."""
    return any(getattr(user, "warms_up", False) for user in environment.user_classes)


def _open_anyway(environment: Environment, cap: float) -> None:
    users = int(_spawned[1])
    if "start" in _window or _opening or len(_warm_ups) >= users:  # opened, or opening (its first scrape under way)
        return
    _unfinished[:] = [
        f"{users - len(_warm_ups)} of {users} users' warm-up requests had not ended {cap:g} s after the users were "
        "spawned (--request-timeout and a margin): the window opened anyway, with them in it"
    ]
    _open(environment)


def _open(environment: Environment) -> None:
    """The window opens: Locust's stats restart, the --window-time countdown starts, Triton's counters are read;
    not once the run is stopping (an interrupt during the warm-ups: nothing was measured)."""
    if "start" in _window or _stopping or _opening:
        return
    _opening.append(True)
    # Triton's counters are read before the window's start, as they are after its end: the server's count then
    # covers every request the client counts in the window (read after the start, the answers that ended during the
    # scrape were the client's alone: 2619 against Triton's 2618 once the users ran warm at the start)
    before = _scrape(environment)
    if _stopping:
        return
    _window.update(start=time.time(), metrics_before=before)
    _origin.set(_window["start"])  # the open loop's schedules start now (`schedule_start`)
    if environment.runner is not None and environment.reset_stats:
        environment.runner.stats.reset_all()
    if isinstance(environment.runner, MasterRunner):  # to every worker: the schedules' origin, and the stats reset
        environment.runner.send_message(WINDOW_OPEN_MESSAGE, {"start": _window["start"]})
    options = environment.parsed_options
    if options is not None and options.window_time > 0:
        # what Locust's -t does at its end (`runner.quit()`: stop, tell the workers to quit), timed from here; the
        # window ends there, or at the last answer after it (`recording_files.measured_end`), not at Locust's stop
        _window["planned_end"] = _window["start"] + options.window_time
        gevent.spawn_later(options.window_time, _end_run, environment)


def plan_window_end(at: float) -> None:
    """A shape's stages end at wall time `at` (`locustfile_staged.py`, `locustfile_user_shape.py`): the window's
    planned end, as --window-time's, not Locust's stop after it (`recording_files.measured_end`)."""
    _window["planned_end"] = at


def _end_run(environment: Environment) -> None:
    if environment.runner is not None:
        environment.runner.quit()


@events.test_stopping.add_listener
def close_window(environment: Environment, **_: Any) -> None:
    if _is_worker(environment) or "start" not in _window or "end" in _window:
        return
    _window.update(end=time.time(), metrics_after=_scrape(environment))
    _window.update(listening_pid=_listening_pid(environment))  # at the window's end, not once Locust has exited
    _window.update(warm_up=_warm_up_record(_window["start"], _window["end"]))
    _write(environment, WINDOW_FILE, lambda path: path.write_text(json.dumps(_window)))


def _listening_pid(environment: Environment) -> int | None:
    """The process listening on the server's gRPC port as the window closes (`step_result.pid_at_window_end`):
    read by the harness once Locust had exited, a tritonserver killed after the window closed (between two steps)
    read as "stopped during the measured window", the step's server figures left out."""
    from loadtest.server_pids import listening_pid

    options = environment.parsed_options
    return listening_pid(options.triton_url) if options is not None and options.triton_url else None


def _warm_up_record(start: float, end: float) -> dict[str, Any] | None:
    """The users' warm-ups as the window file holds them (None: none was told): those ended before the window
    opened, and after (past the cap), which Triton counts in it. A stage's rise sends none (`TritonGrpcUser`)."""
    if not _warm_ups:
        return None
    before = [(ms, answered) for ended, ms, answered in _warm_ups if ended < start]
    return {
        "requests": len(before),
        "failed": sum(1 for _, answered in before if not answered),
        "max_ms": max((ms for ms, _ in before), default=0.0),
        "warm_up_s": max(0.0, start - _spawned[0]) if _spawned else 0.0,  # the window's wait after the spawn
        "in_window": sum(1 for ended, _, _ in _warm_ups if start <= ended <= end),
        "unfinished": _unfinished[0] if _unfinished else None,
    }


@events.quitting.add_listener
def save_latencies(environment: Environment, **_: Any) -> None:
    # Stopped by SIGTERM (an interrupted loadtest), Locust quits before its users stop: the window ends here, so
    # every request it holds was saved with it (those its stop then cuts were never in it). An open-loop user's
    # backlog is in it, though (due in the window, unanswered or never sent): recorded here, as its stop would.
    close_window(environment)
    note_stopping()
    for record_left in list(_at_quit):
        record_left()
    _at_quit.clear()
    if _samples:
        array = np.asarray(_samples, dtype=np.float64)
        _write(environment, f"latencies-{os.getpid()}.npy", lambda path: np.save(path, array))
    if _unanswered:
        waiting = np.asarray(_unanswered, dtype=np.float64)
        _write(environment, f"{UNANSWERED_PREFIX}{os.getpid()}.npy", lambda path: np.save(path, waiting))
    if _unsent:
        backlog = np.asarray(_unsent, dtype=np.float64)
        _write(environment, f"{UNSENT_PREFIX}{os.getpid()}.npy", lambda path: np.save(path, backlog))


def _write(environment: Environment, name: str, writer: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.record_dir:
        return
    directory = Path(options.record_dir)
    directory.mkdir(parents=True, exist_ok=True)
    writer(directory / name)
