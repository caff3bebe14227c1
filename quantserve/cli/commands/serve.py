"""`quantserve serve --repo model_repo [--grpc-port 8001 --http-port 8000 --metrics-port 8002 --host 127.0.0.1]`."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

from serving.server import MODEL_CONTROL_MODES, ServerOptions, TritonServer


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="start the real tritonserver on a model repository; stops cleanly on Ctrl-C/SIGTERM",
        description="Run tritonserver on REPO until interrupted; waits until the server and every model are ready.",
    )
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1 only)")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--model-control", choices=MODEL_CONTROL_MODES, default="none")
    parser.add_argument("--log-file", type=Path, help="tritonserver log (default: a file in the temp folder)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for readiness")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    server = TritonServer(server_options(args))
    # SIGTERM takes the same path as Ctrl-C, so the server is stopped (by pid) whatever phase we are in.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with server:
            _print_ready(server)
            while server.is_running():
                time.sleep(0.5)
        print(f"tritonserver exited on its own (log: {server.log_path})", flush=True)
        return 1
    except KeyboardInterrupt:
        print("stopped", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The command's flags as the one `ServerOptions` the server runs with."""
    return ServerOptions(
        args.repo,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        host=args.host,
        log_path=args.log_file,
        model_control=args.model_control,
        startup_timeout_s=args.startup_timeout,
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _print_ready(server: TritonServer) -> None:
    models = server.loaded_models()
    print(f"tritonserver ready (pid {server.pid}), repository {server.repo}", flush=True)
    print(f"  gRPC    {server.grpc_url}", flush=True)
    print(f"  HTTP    http://{server.http_url}", flush=True)
    print(f"  metrics {server.metrics_url}", flush=True)
    print(f"  log     {server.log_path}", flush=True)
    for name, versions in sorted(models.items()):
        print(f"  model   {name} (versions {', '.join(versions)})", flush=True)
    if not models:
        print("  no models loaded", flush=True)
    print("press Ctrl-C to stop", flush=True)
