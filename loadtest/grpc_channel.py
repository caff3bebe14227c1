"""How a Locust user's gRPC channel to Triton is made: tritonclient's options with a short reconnect backoff, and
TLS from the Locust options; and one question asked over a channel of its own before the window (does the model
batch?).

Imports no locust, so it can be read and tested without gevent's monkey-patching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tritonclient.grpc as grpcclient

# gRPC's reconnect backoff (1 s, growing to 120 s) kept users failing with a cached "Connection refused" for up to
# ~4 s after a restarted tritonserver listened again, so an outage measured longer than it was (9.0 s vs 5.7 s).
# Pitfall: grpc.min_reconnect_backoff_ms is also gRPC core's minimum connect timeout (20 s): at 100 ms, a connection
# to a hung or busy server failed after 100 ms without its HTTP/2 SETTINGS frame instead of waiting, so it stays.
RECONNECT_BACKOFF_ARGS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
)
CONFIG_TIMEOUT_S = 5.0


def channel_args() -> list[tuple[str, Any]]:
    """tritonclient's own channel options (given `channel_args` it drops them: message size and keepalive) plus a
    short reconnect backoff, so a request after a server restart reaches it within a quarter second."""
    keepalive = grpcclient.KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        *RECONNECT_BACKOFF_ARGS,
    ]


def client_tls(options: Any) -> Any:
    """TLS from the Locust options (`--triton-tls-ca`, `--triton-tls-cert`, `--triton-tls-key`), else None."""
    from serving.tls import ClientTls

    given = [getattr(options, name, "") or None for name in ("triton_tls_ca", "triton_tls_cert", "triton_tls_key")]
    if any(given):
        return ClientTls.from_args(*(Path(v) if v else None for v in given))
    return ClientTls.from_env()
