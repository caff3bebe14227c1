"""Where a running `quantserve serve` listens, so `loadtest`/`evaluate` find its metrics port by the gRPC URL.

`quantserve serve` writes one small JSON record per server (pid, repository, host, gRPC/HTTP/metrics
ports, model control mode) into the runtime folder and removes it on exit:
`$QUANTSERVE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/quantserve`, else `~/.cache/quantserve/run`,
file `serve-<grpc port>.json`. A record whose pid is gone is stale and removed when read. It also lists the models
serve left out (refused by its own checks, or by Triton before loading: listed by Triton with no state and no
reason), each with serve's reason, rewritten as that changes: a client asking for one says why at once (session 58:
evaluate and infer waited 30 s, then said only "not ready").
Triton cannot be asked for its metrics port over gRPC, so without a record the only other
source is the default layout (gRPC 8001 → metrics 8002 on the same host), probed before use.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quantserve.errors import InternalError, QuantserveError
from quantserve.files import write_atomic
from serving.tls import reaches_this_machine

RUNTIME_ENV = "QUANTSERVE_RUNTIME_DIR"
RECORD_PREFIX = "serve-"
DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT = 8001, 8002
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ServedEndpoints:
    """One running server's process and ports, as `quantserve serve` recorded them."""

    pid: int  # the `quantserve serve` process (it may restart tritonserver on the same ports)
    repo: str
    host: str
    grpc_port: int
    http_port: int
    metrics_port: int
    # how it loads changes: "none" loads the repository only at tritonserver's start, so a deploy or rollback into it
    # is served from the next start only (a record from before it was kept: "explicit", serve's default)
    model_control: str = "explicit"
    refused: dict[str, str] = field(default_factory=dict)  # models serve left out → its reason (`refused_reason`)

    @property
    def loads_changes(self) -> bool:
        """Whether a change to its repository is served without a restart (explicit: serve reloads it; poll: Triton)."""
        return self.model_control != "none"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.host}:{self.metrics_port}"


def endpoints_of(server: Any, refused: dict[str, str] | None = None) -> ServedEndpoints:
    """The record for a started `serving.server.TritonServer`, owned by this process (which may restart it);
    `refused`: the models left out, with serve's reason (`Supervisor.refused`)."""
    if server.pid is None:
        raise InternalError("the server is not running: nothing to record")
    ports, control = server.ports, server.options.model_control
    return ServedEndpoints(
        os.getpid(),
        str(server.repo),
        server.host,
        ports["grpc"],
        ports["http"],
        ports["metrics"],
        control,
        dict(refused or {}),
    )


def runtime_dir() -> Path:
    """The folder the records live in (see the module docstring)."""
    if os.environ.get(RUNTIME_ENV):
        return Path(os.environ[RUNTIME_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "quantserve"
    return Path.home() / ".cache" / "quantserve" / "run"


def record_path(grpc_port: int) -> Path:
    return runtime_dir() / f"{RECORD_PREFIX}{grpc_port}.json"


def write_record(endpoints: ServedEndpoints) -> Path:
    """Write the record atomically (a reader never sees half a file); returns its path."""
    path = record_path(endpoints.grpc_port)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(asdict(endpoints), indent=2) + "\n")


@contextmanager
def recorded(endpoints: ServedEndpoints) -> Iterator[Path]:
    """The record exists while the block runs and is removed after, however it ends."""
    path = write_record(endpoints)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def refused_reason(grpc_url: str, model: str) -> str | None:
    """Why the live `quantserve serve` at `grpc_url` left `model` out, as its record says; None where none is
    recorded, serve did not refuse it, or its folder changed after the record was written (serve's watcher looks at
    it again: a load may still come)."""
    endpoints = find_endpoints(grpc_url)
    reason = endpoints.refused.get(model) if endpoints is not None else None
    if endpoints is None or reason is None:
        return None
    try:
        written = record_path(endpoints.grpc_port).stat().st_mtime
        folder = Path(endpoints.repo) / model
        changed = max(p.stat().st_mtime for p in (folder, *folder.iterdir()))
    except (OSError, ValueError):
        return f"quantserve serve (pid {endpoints.pid}) left it out: {reason}"
    return None if changed > written else f"quantserve serve (pid {endpoints.pid}) left it out: {reason}"


def _split(url: str) -> tuple[str, int] | None:
    host, _, port = url.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


def _same_host(a: str, b: str) -> bool:
    return a == b or (reaches_this_machine(a) and reaches_this_machine(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read_record(path: Path) -> ServedEndpoints | None:
    """The record at `path`, or None where it is gone or not a record."""
    try:
        return ServedEndpoints(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def served_records() -> Iterator[tuple[Path, ServedEndpoints]]:
    """Every record in the runtime folder, live or stale, with its path (unreadable files skipped)."""
    for path in sorted(runtime_dir().glob(f"{RECORD_PREFIX}*.json")):
        endpoints = _read_record(path)
        if endpoints is not None:
            yield path, endpoints


def find_endpoints(grpc_url: str) -> ServedEndpoints | None:
    """The live server recorded for this gRPC URL, or None; a record of a dead process is removed."""
    parts = _split(grpc_url)
    if parts is None:
        return None
    path = record_path(parts[1])
    endpoints = _read_record(path)
    if endpoints is None:
        return None
    if not _alive(endpoints.pid):
        path.unlink(missing_ok=True)
        return None
    return endpoints if _same_host(endpoints.host, parts[0]) else None


def find_endpoints_by_http(http_url: str) -> ServedEndpoints | None:
    """The live server recorded with this HTTP address (`--url` of deploy and rollback: `host:port`, with or without
    `http://`), or None."""
    parts = urlsplit(http_url if "//" in http_url else f"//{http_url}")
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return None
    for path in sorted(runtime_dir().glob(f"{RECORD_PREFIX}*.json")):
        endpoints = _read_record(path)
        if endpoints is None or endpoints.http_port != port:
            continue
        if _same_host(endpoints.host, host) and _alive(endpoints.pid):
            return endpoints
    return None


def find_serving_repository(repo: Path) -> ServedEndpoints | None:
    """The live `quantserve serve` recorded as serving `repo`, or None."""
    for path in sorted(runtime_dir().glob(f"{RECORD_PREFIX}*.json")):
        endpoints = _read_record(path)
        if endpoints is not None and Path(endpoints.repo).resolve() == Path(repo).resolve() and _alive(endpoints.pid):
            return endpoints
    return None


def not_loaded_until_restart(repo: Path) -> str | None:
    """Where a `quantserve serve --model-control none` serves `repo`, the words for a change just written into it
    (a deploy's version, a rollback's): on disk, served from tritonserver's next start only; None where no such
    serve runs. Measured (session 43): deploy said "deployed as 'm' version 2" while Triton kept serving 1, and an
    unrelated tritonserver restart switched to 2 (a worse INT8 build) in silence."""
    endpoints = find_serving_repository(repo)
    if endpoints is None or endpoints.loads_changes:
        return None
    return (
        f"on disk, not served: quantserve serve (pid {endpoints.pid}) runs {repo} with --model-control none and "
        "loads the repository only when tritonserver starts, serving what it loaded until then; restart serve to "
        "serve it now"
    )


def check_serves_repository(http_url: str, repo: Path) -> None:
    """Refuse a `--url` whose server is a `quantserve serve` of another repository: it would reload its own copy
    of the model, and the deploy would say the new version is live; and one run with --model-control none, which
    loads no model after its start (Triton's refusal named polling, which was not on: session 43). A server not
    recorded is not checked."""
    endpoints = find_endpoints_by_http(http_url)
    if endpoints is None:
        return
    if not endpoints.loads_changes:
        raise QuantserveError(
            f"{http_url}: quantserve serve (pid {endpoints.pid}) runs with --model-control none: it loads no model "
            "after its start, so --url cannot make a change live; leave out --url and restart serve, or serve with "
            "--model-control explicit: nothing written"
        )
    if Path(endpoints.repo).resolve() == Path(repo).resolve():
        return
    raise QuantserveError(
        f"{http_url}: serves repository {endpoints.repo} (quantserve serve, pid {endpoints.pid}), not --repo {repo}; "
        "it would load its own copy of the model: pass that repository as --repo, or the --url of the server of "
        f"{repo}"
    )


def answers_triton_metrics(metrics_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether `host:port/metrics` answers with Triton's Prometheus counters."""
    try:
        with urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=timeout_s) as response:
            return b"nv_inference" in response.read()
    except (OSError, urllib.error.URLError, ValueError):
        return False


def find_metrics_url(grpc_url: str) -> str | None:
    """Triton's metrics `host:port` for a gRPC URL: the serve record, else the default port if it answers."""
    endpoints, parts = find_endpoints(grpc_url), _split(grpc_url)
    if endpoints is not None and parts is not None:
        return f"{parts[0]}:{endpoints.metrics_port}"  # the host the user reaches, not the bind address
    if parts is not None and parts[1] == DEFAULT_GRPC_PORT:
        guess = f"{parts[0]}:{DEFAULT_METRICS_PORT}"
        if answers_triton_metrics(guess):
            return guess
    return None


def metrics_hint(grpc_url: str) -> str:
    """The one line shown when the server-side columns stay empty."""
    return (
        f"server-side columns (avg batch, queue) are '–': no Triton metrics endpoint found for {grpc_url} "
        "(none recorded by `quantserve serve`, default port not answering); pass --metrics-url HOST:PORT"
    )


def recorded_port(url: str) -> tuple[ServedEndpoints, str] | None:
    """The live server recorded with `host:port` as one of its ports, and which ("gRPC", "HTTP", "metrics")."""
    parts = _split(url)
    if parts is None:
        return None
    for path in sorted(runtime_dir().glob(f"{RECORD_PREFIX}*.json")):
        endpoints = _read_record(path)
        if endpoints is None or not _same_host(endpoints.host, parts[0]) or not _alive(endpoints.pid):
            continue
        ports = {endpoints.grpc_port: "gRPC", endpoints.http_port: "HTTP", endpoints.metrics_port: "metrics"}
        if parts[1] in ports:
            return endpoints, ports[parts[1]]
    return None


def _grpc_port_advice(host: str, recorded: tuple[ServedEndpoints, str] | None) -> str:
    if recorded is None:
        return "pass Triton's gRPC port as --url host:port (8001 by default; `quantserve serve` prints it)"
    return f"its gRPC port is {host}:{recorded[0].grpc_port}: pass --url {host}:{recorded[0].grpc_port}"


def grpc_address_problem(url: str) -> str | None:
    """Why `url` is no gRPC address, at once: a scheme (`http://host:port` waited 12 s, then said no server
    answered); None for `host:port`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    address = rest.split("/", 1)[0]
    host = address.rpartition(":")[0] or address
    return (
        f"{url}: a gRPC address is host:port, with no {scheme}:// (that is for Triton's HTTP API); "
        f"{_grpc_port_advice(host, recorded_port(address))}"
    )


def http_answer(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """What speaks HTTP/1 at `host:port`: "metrics" (Triton's Prometheus counters), "HTTP" (any other answer, an
    error status included), or None (nothing answers HTTP: refused, silent, or another protocol)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{url}/metrics", timeout=timeout_s) as response:
            return "metrics" if b"nv_inference" in response.read(1 << 16) else "HTTP"
    except urllib.error.HTTPError:
        return "HTTP"
    except (OSError, ValueError, http.client.HTTPException):
        return None


def http_port_problem(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """One line when the `host:port` given as a gRPC URL answers HTTP instead (Triton's HTTP or metrics port; it
    waited 12 s, then said no server answered), naming the gRPC port where `quantserve serve` recorded it."""
    kind = http_answer(url, timeout_s)
    if kind is None:
        return None
    recorded = recorded_port(url)
    if recorded is not None and recorded[1] == "gRPC":  # a recorded gRPC port speaking HTTP: the record is stale
        recorded = None
    kind = recorded[1] if recorded is not None else kind
    host = url.rpartition(":")[0]
    return f"{url} answers HTTP (Triton's {kind} port), not gRPC; {_grpc_port_advice(host, recorded)}"
