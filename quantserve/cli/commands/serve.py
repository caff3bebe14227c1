"""`quantserve serve --repo model_repo [--grpc-port 8001 … --host 127.0.0.1] [--tls-cert F --tls-key F]`.

Supervised: a `tritonserver` that dies, or hangs (no answer to its liveness endpoint for
`--hang-timeout` seconds), is restarted (exponential backoff, a cap per window), and
with the default explicit model control a deploy or rollback into the repository goes live
without a restart (see serving.supervisor).

A model that does not load stops the start, naming it; `--allow-failed-models` (Triton's `--exit-on-error=false`)
serves the others instead, names each one that did not load in a warning line, and judges readiness per model
(Triton's `--strict-readiness=false`): under strict readiness one broken model held /v2/health/ready false, so
health checks and load balancers took every good model out of service with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.endpoints import endpoints_of, recorded
from serving.ports import check_port_free
from serving.server import TritonServer
from serving.server_options import MODEL_CONTROL_MODES, ServerOptions

if TYPE_CHECKING:
    from serving.supervisor import Supervisor

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # each stops serve as Ctrl-C does


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the real tritonserver on a model repository, supervised; stops cleanly on Ctrl-C/SIGTERM/SIGHUP",
        description="Run tritonserver on REPO until interrupted: restarted if it dies or hangs, repository changes "
        "loaded live.",
    )
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind, IPv4 or IPv6, or a name, bound as the one address it resolves to (IPv4 first) "
        "(default: 127.0.0.1 only)",
    )
    parser.add_argument("--grpc-port", type=int, default=8001, help="inference over gRPC (default %(default)s)")
    parser.add_argument(
        "--http-port", type=int, default=8000, help="HTTP: health, model control, --url (default %(default)s)"
    )
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics (default %(default)s)")
    parser.add_argument(
        "--model-control",
        choices=MODEL_CONTROL_MODES,
        default="explicit",
        help="explicit (default): every model loaded at start, changed ones (config, version folders, their files) "
        "reloaded live; poll: Triton reloads changed models itself, serve names each failed reload once; none: load "
        "once",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="tritonserver log (default: a file in the temp folder, removed at a clean stop, kept where it failed)",
    )
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for readiness")
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts allowed within --restart-window")
    parser.add_argument("--restart-window", type=float, default=300.0, help="seconds over which restarts are counted")
    parser.add_argument(
        "--hang-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="kill and restart a tritonserver that has not answered its liveness endpoint (/v2/health/live) for "
        "this long, e.g. a stopped or deadlocked process (default 30; 0: off)",
    )
    parser.add_argument(
        "--allow-failed-models",
        action="store_true",
        help="start even if some models do not load: serve the others and name each failed one with Triton's reason; "
        "/v2/health/ready then stays true while the server runs (ask /v2/models/NAME/ready per model)",
    )
    parser.add_argument(
        "--no-summary-latencies",
        dest="summary_latencies",
        action="store_false",
        help="leave out Triton's latency summaries (p50/p90/p95/p99 of each model's request, queue and compute times "
        "over its last minute, on /metrics; a load test's report sets them beside the client's), kept by default",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve gRPC over TLS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")
    parser.add_argument("--tls-client-ca", type=Path, help="mutual TLS: clients need a certificate this CA signed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from serving.repository_lock import serving_repository
    from serving.restarts import LivenessWatchdog, RestartPolicy
    from serving.supervisor import Supervisor

    options = server_options(args)
    policy = RestartPolicy(args.max_restarts, args.restart_window)
    supervisor = Supervisor(options, policy, log=_say, watchdog=LivenessWatchdog(args.hang_timeout))
    # SIGTERM and SIGHUP (the terminal closed) take the same path as Ctrl-C, so the server is stopped (by pid),
    # its scratch folder and endpoint record removed, whatever phase we are in.
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
    interrupted = False
    held = contextlib.ExitStack()
    try:
        held.enter_context(serving_repository(options.repo))  # before anything starts: a second serve is refused
        check_repository_free(options)
        check_ports(options)
        if options.exposed_without_tls:  # said once the server can bind there: one refused never listened
            print(exposure_warning(options), file=sys.stderr, flush=True)
        supervisor.start()
        with recorded(endpoints_of(supervisor.server, supervisor.refused)) as record:  # loadtest/evaluate read it
            # the models serve leaves out, rewritten as they change: a client asking for one says why at once
            supervisor.on_refused = lambda refused: _record_refused(supervisor, refused, record)
            _print_ready(supervisor.server)
            print(f"  ports recorded in {record}", flush=True)
            supervisor.run()
        return 0
    except KeyboardInterrupt:
        interrupted = True
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closing terminal may hang up again: never cut the cleanup
        _say("stopping… (tritonserver and its model processes)")
        return 0
    finally:
        supervisor.on_refused = None  # the record is gone: a load thread ending now writes none again
        supervisor.stop()
        held.close()  # the repository is free once its tritonserver is gone
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if interrupted:  # said once the server and every process it started are gone: its ports are free
            _say_stopped(supervisor.server)


def exposure_warning(options: ServerOptions) -> str:
    """The warning for a server bound beyond loopback without TLS: all three endpoints follow --host then."""
    return (
        f"warning: gRPC, HTTP and metrics listen on {shown_address(options, 'grpc')} without TLS: anyone who can "
        "reach it can run and manage models; use --tls-cert/--tls-key (and --tls-client-ca) or bind 127.0.0.1"
    )


def shown_address(options: ServerOptions, role: str) -> str:
    """Where `role` binds, with the --host name it was resolved from: 'localhost (127.0.0.1)'."""
    address = options.address(role)
    return f"{options.host} ({address})" if address == options.bound_host and options.host != address else address


def host_line(options: ServerOptions) -> str | None:
    """The startup line saying which address a --host name was bound as (tritonserver binds addresses, not
    names), or None where --host is an address."""
    if options.bound_host == options.host.strip("[]"):
        return None
    return f"  host    {options.host}, bound as {options.bound_host}"


def _record_refused(supervisor: Supervisor, refused: dict[str, str], record: Path) -> None:
    """Rewrite serve's endpoint record with the models it leaves out, while it is there."""
    from serving.endpoints import write_record

    if record.exists() and supervisor.server.pid is not None:  # not between a restart's stop and start
        with contextlib.suppress(OSError):  # a full disk: the clients keep the older list, serve keeps serving
            write_record(endpoints_of(supervisor.server, refused))


def _say_stopped(server: TritonServer) -> None:
    """The last line of a stop: how it ended where not cleanly. Measured (session 54): after a model's process died
    and serve reloaded the model, tritonserver kept counting a model live at SIGTERM, was killed 20 s later, and
    serve said only "stopped", its log kept in the temp folder unnamed."""
    killed = (
        f": tritonserver had not exited {server.options.stop_timeout_s:g} s after SIGTERM and was killed "
        f"(log kept: {server.log_path})"
        if server.killed_at_stop
        else ""
    )
    if server.still_running:
        pids = ", ".join(map(str, server.still_running))
        _say(f"stopped{killed}; tritonserver's processes {pids} were still exiting after SIGKILL")
    else:
        _say(f"stopped{killed}")


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The command's flags as the one `ServerOptions` the server runs with."""
    from quantserve.errors import QuantserveError
    from serving.tls import ServerTls

    if (args.tls_cert is None) != (args.tls_key is None):
        raise QuantserveError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise QuantserveError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    return ServerOptions(
        args.repo,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        host=args.host,
        log_path=args.log_file,
        model_control=args.model_control,
        load_models=("*",) if args.model_control == "explicit" else (),
        startup_timeout_s=args.startup_timeout,
        tls=tls,
        allow_failed_models=args.allow_failed_models,
        summary_latencies=args.summary_latencies,
    )


def check_ports(options: ServerOptions) -> None:
    """Refuse a taken port before starting anything, naming the `quantserve serve` that holds it if one does."""
    from quantserve.errors import QuantserveError

    for role, port in options.ports.items():
        try:
            check_port_free(options.address(role), port, role, shown_address(options, role))
        except QuantserveError as exc:
            holder = serve_holding(port)
            raise QuantserveError(f"{exc}; held by {holder}" if holder else str(exc)) from exc


def check_repository_free(options: ServerOptions) -> None:
    """Refuse a repository another live `quantserve serve` serves: both watchers would load every change, and a
    deploy --url to one leaves the other serving what it had. The repository's serve lock (taken first, see
    serving.repository_lock) refuses one still starting; this names a running one by its endpoint record too."""
    from quantserve.errors import QuantserveError

    holder = serve_holding(repo=Path(options.repo))
    if holder:
        raise QuantserveError(
            f"{options.repo}: already served by {holder}; stop it first, or serve a copy of the repository"
        )


def serve_holding(port: int | None = None, repo: Path | None = None) -> str | None:
    """The live `quantserve serve` whose record (serving.endpoints) lists `port`, or serves `repo`, in a few words."""
    from optimizer.scratch import process_alive
    from serving.endpoints import RECORD_PREFIX, ServedEndpoints, runtime_dir

    for path in sorted(runtime_dir().glob(f"{RECORD_PREFIX}*.json")):
        try:
            served = ServedEndpoints(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        holds_port = port in (served.grpc_port, served.http_port, served.metrics_port)
        same_repo = repo is not None and Path(served.repo).resolve() == repo.resolve()
        if (holds_port or same_repo) and process_alive(served.pid) and served.pid != os.getpid():
            return f"quantserve serve (pid {served.pid}, repository {served.repo}; record {path})"
    return None


def _say(line: str) -> None:
    """Print a line; a terminal already closed (SIGHUP) fails the write, which must not stop the cleanup."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _print_ready(server: TritonServer) -> None:
    models = server.loaded_models()
    tls = server.options.tls
    scheme = "gRPC+mTLS" if tls and tls.client_ca else "gRPC+TLS" if tls else "gRPC"
    print(f"tritonserver ready (pid {server.pid}), repository {server.repo}", flush=True)
    print(f"  {scheme + ' ':<8}{server.grpc_url}", flush=True)  # "gRPC+mTLS" is wider than the column
    print(f"  HTTP    http://{server.http_url}", flush=True)
    print(f"  metrics {server.metrics_url}", flush=True)
    print(f"  log     {server.log_path}", flush=True)
    if host_line(server.options) is not None:
        print(host_line(server.options), flush=True)
    for name, versions in sorted(models.items()):
        print(f"  model   {name} (versions {', '.join(versions)})", flush=True)
    if not models:
        print("  no models loaded", flush=True)
    print("press Ctrl-C to stop", flush=True)
