"""Locust plumbing shared by the locustfiles: Triton options, the measured window, raw latencies.

Locust's own percentiles are rounded into buckets (1 ms steps below 100 ms), too coarse for a
model that answers in 2 ms, so every process also keeps each request's exact latency and
writes it to `--record-dir` on exit. The master (or the single local process) marks the
measured window — from "all users spawned" to "stopping" — and scrapes Triton's metrics at
both ends, so the server-side counters cover exactly that window.

`--window-time N` ends a headless run N seconds after all users are spawned (Locust's
`spawning_complete`), so the window is the N seconds asked for at the full load. Locust's own
`-t` counts from the start of spawning (locust 2.x; a clock after the ramp was declined upstream,
locustio/locust#1352): its window was N less the ramp, 2.3–2.7 s of 4 behind a 1.5 s ramp.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
import locust.stats
import numpy as np
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from loadtest.load_pattern import ARRIVALS
from loadtest.recording_files import UNANSWERED_PREFIX, UNSENT_PREFIX, WINDOW_FILE

# Locust rewrites its CSVs every CSV_STATS_INTERVAL_SEC (1 s) and does not write them again at
# exit, so the last second of a run was missing from them; 0.2 s keeps them within one tick of the window.
locust.stats.CSV_STATS_INTERVAL_SEC = 0.2  # type: ignore[assignment]

# (end wall time, latency ms, 1.0 ok / 0.0 failed, and for the open loop: send lag ms — how long after its
# arrival time it left the client — and generator lag ms — how late the generator woke for it; then the samples the
# request carried, and for the open loop its user's requests in flight when it arrived, itself included; then 1.0
# when it failed by the client's own deadline, --request-timeout). The end time is when its answer came back to the
# OS thread that sent it (`grpc_user`), not when its greenlet woke to report it.
_samples: list[tuple[float, float, float, float, float, float, float, float]] = []
_window: dict[str, Any] = {}
# Requests still waiting for their answer when the run stopped: (stop wall time, ms waited since sent, samples in
# the request). Locust drops them; a server that stopped answering leaves nothing else behind.
_unanswered: list[tuple[float, float, float]] = []
# Open-loop arrivals still waiting in the client for an in-flight slot when the run stopped, never sent: (arrival
# wall time, samples in the request). Their users knew them as a backlog; nothing else records them.
_unsent: list[tuple[float, float]] = []
_stopping: list[bool] = []  # the run is stopping (a user stopped before, by a stage of --stages, is not noted)
_environment: list[Environment] = []  # the process's Locust environment, captured at init


@events.init.add_listener
def remember_environment(environment: Environment, **_: Any) -> None:
    _environment[:] = [environment]


@events.init_command_line_parser.add_listener
def add_triton_options(parser: Any) -> None:
    """Triton target and load options, settable on the command line, in the environment or the web UI."""
    group = parser.add_argument_group("quantserve / Triton")
    group.add_argument("--triton-url", default="127.0.0.1:8001", env_var="QUANTSERVE_URL", help="gRPC host:port")
    group.add_argument("--triton-model", default="", env_var="QUANTSERVE_MODEL", help="model name")
    group.add_argument("--triton-data", default="", env_var="QUANTSERVE_DATA", help=".npz of inputs")
    group.add_argument("--request-batch", type=int, default=1, env_var="QUANTSERVE_REQUEST_BATCH")
    group.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        env_var="QUANTSERVE_REQUEST_TIMEOUT",
        help="seconds each request may take before the client gives up on it (gRPC deadline)",
    )
    group.add_argument("--metrics-url", default="", env_var="QUANTSERVE_METRICS_URL", help="Triton metrics host:port")
    group.add_argument("--record-dir", default="", env_var="QUANTSERVE_RECORD_DIR", help="where raw latencies go")
    group.add_argument("--rate", type=float, default=0.0, env_var="QUANTSERVE_RATE", help="open loop: requests/s")
    group.add_argument("--arrivals", default="constant", choices=ARRIVALS, env_var="QUANTSERVE_ARRIVALS")
    group.add_argument("--stages", default="", env_var="QUANTSERVE_STAGES", help="staged users: 4:20s,32:5s,4:20s")
    group.add_argument("--trace", default="", env_var="QUANTSERVE_TRACE", help="open loop: replay these arrivals")
    group.add_argument(
        "--trace-speed", type=float, default=1.0, env_var="QUANTSERVE_TRACE_SPEED", help="2: twice as fast"
    )
    group.add_argument(
        "--trace-scale", type=float, default=1.0, env_var="QUANTSERVE_TRACE_SCALE", help="0.1: a tenth of its arrivals"
    )
    group.add_argument("--rate-users", type=int, default=0, env_var="QUANTSERVE_RATE_USERS", help=argparse.SUPPRESS)
    group.add_argument("--max-in-flight", type=int, default=64, env_var="QUANTSERVE_MAX_IN_FLIGHT")
    group.add_argument(
        "--window-time",
        type=float,
        default=0.0,
        env_var="QUANTSERVE_WINDOW_TIME",
        help="headless: stop this many seconds after all users are spawned (-t counts from the start of spawning)",
    )
    group.add_argument("--triton-tls-ca", default="", env_var="QUANTSERVE_TLS_CA", help="PEM CA: connect over TLS")
    group.add_argument("--triton-tls-cert", default="", env_var="QUANTSERVE_TLS_CERT", help="mutual TLS: client cert")
    group.add_argument("--triton-tls-key", default="", env_var="QUANTSERVE_TLS_KEY", help="mutual TLS: client key")


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
            1.0 if exception and lags.get("client_deadline") else 0.0,
        )
    )


def record_unanswered(sent_wall_time: float, samples: int) -> None:
    """A user stopping with a request sent and not answered (`sent_wall_time`: `time.time()` when it left the
    client): noted when the run is stopping."""
    if _stopping:
        now = time.time()
        _unanswered.append((now, max(0.0, now - sent_wall_time) * 1000.0, float(samples)))


def record_unsent(arrival_wall_time: float, samples: int) -> None:
    """A user stopping with an arrival (due at `arrival_wall_time`, as `time.time()`) it never sent: noted when the
    run is stopping."""
    if _stopping:
        _unsent.append((arrival_wall_time, float(samples)))


@events.test_stopping.add_listener
def note_stopping(**_: Any) -> None:
    """Fired in every Locust process before its users are stopped."""
    _stopping[:] = [True]


def _is_worker(environment: Environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def _scrape(environment: Environment) -> dict[str, Any] | None:
    options = environment.parsed_options
    if options is None or not options.metrics_url:
        return None
    from loadtest.triton_metrics import scrape
    from quantserve.errors import QuantserveError

    try:
        return scrape(options.metrics_url)
    except QuantserveError as exc:  # a hung server: the load's own figures stand, its counters are not known
        _window.setdefault("metrics_errors", []).append(str(exc))
        return None


@events.spawning_complete.add_listener
def open_window(**_: Any) -> None:
    if not _environment or _is_worker(_environment[0]) or "start" in _window:
        return
    environment = _environment[0]
    _window.update(start=time.time())
    options = environment.parsed_options
    if options is not None and options.window_time > 0:
        # what Locust's -t does at its end (`runner.quit()`: stop, tell the workers to quit), timed from here
        gevent.spawn_later(options.window_time, _end_run, environment)
    _window.update(metrics_before=_scrape(environment))


def _end_run(environment: Environment) -> None:
    if environment.runner is not None:
        environment.runner.quit()


@events.test_stopping.add_listener
def close_window(environment: Environment, **_: Any) -> None:
    if _is_worker(environment) or "start" not in _window or "end" in _window:
        return
    _window.update(end=time.time(), metrics_after=_scrape(environment))
    _write(environment, WINDOW_FILE, lambda path: path.write_text(json.dumps(_window)))


@events.quitting.add_listener
def save_latencies(environment: Environment, **_: Any) -> None:
    # Stopped by SIGTERM (an interrupted loadtest), Locust quits before its users stop: the window ends here, so
    # every request it holds was saved with it (those its stop then cuts were never in it).
    close_window(environment)
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
