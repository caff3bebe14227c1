"""The options quantserve adds to Locust's command line: the Triton target, the load, the trace to replay; each also
settable in the environment (QUANTSERVE_…) or the web UI's form. And the --trace they name as replayed, read once
per process. Registered on import, as Locust's event hooks are (`loadtest.recording` imports it for the locustfiles).
"""

from __future__ import annotations

import argparse
from typing import Any

import gevent
from locust import events

from loadtest.arrival_trace import ArrivalTrace, read_trace
from loadtest.load_pattern import ARRIVALS

_traces: dict[tuple[str, float, float], ArrivalTrace] = {}  # each --trace as replayed, read once per process


@events.init_command_line_parser.add_listener
def add_triton_options(parser: Any) -> None:
    """Triton target and load options, settable on the command line, in the environment or the web UI."""
    group = parser.add_argument_group("quantserve / Triton")
    group.add_argument("--triton-url", default="127.0.0.1:8001", env_var="QUANTSERVE_URL", help="gRPC host:port")
    group.add_argument("--triton-model", default="", env_var="QUANTSERVE_MODEL", help="model name")
    # every request names version N of the model (two versions live: an A/B)
    group.add_argument("--triton-model-version", default="", env_var="QUANTSERVE_MODEL_VERSION", help="N (newest)")
    group.add_argument("--triton-data", default="", env_var="QUANTSERVE_DATA", help=".npz of inputs")
    group.add_argument(  # "": the one the model's build was told (`request_shapes.ServedInputs.told`)
        "--triton-length-input", default="", env_var="QUANTSERVE_LENGTH_INPUT", help="input requests are cut by"
    )
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
    group.add_argument(
        "--trace-pass-s", type=float, default=0.0, env_var="QUANTSERVE_TRACE_PASS_S", help=argparse.SUPPRESS
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


def replayed_trace(options: Any) -> ArrivalTrace | None:
    """The run's --trace as replayed (None without one), read once per process, in an OS thread: a Locust worker
    that blocked its hub for seconds would miss its heartbeats to the master."""
    if options is None or not options.trace:
        return None
    key = (options.trace, options.trace_speed or 1.0, options.trace_scale or 1.0)
    if key not in _traces:
        _traces[key] = gevent.get_hub().threadpool.apply(read_trace, key)
    return _traces[key].padded_to(getattr(options, "trace_pass_s", 0.0) or 0.0)
