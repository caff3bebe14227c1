"""Whether the metrics address a load test scrapes is that of the Triton server it loads (--url).

Triton cannot be asked over gRPC where its metrics are, so a --metrics-url of another server went unnoticed until
the window's end: `loadtest --url …:19801 --metrics-url …:19812` (the metrics of the server at 19811, as `quantserve
serve` recorded) counted 0 of the client's 1148 answers, and the note blamed "a version unloaded or reloaded during it
(a deploy, a rollback) … another client's load" though nothing was deployed (session 56). Two checks: before any
load, `quantserve serve`'s records (`serving.endpoints`); at the end, the model's own counters at that address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from loadtest.results import NO_TRITON_COUNTERS
from loadtest.triton_metrics import COUNTERS, VERSIONS, ModelCounters
from quantserve.errors import QuantserveError
from serving.endpoints import ServedEndpoints, find_endpoints, recorded_port
from serving.tls import reaches_this_machine

TRITONSERVER = "tritonserver"  # the name Triton's process runs under (the embedded wheel's and the NGC image's)


def metrics_address(metrics_url: str) -> str:
    """`host:port` of a --metrics-url given as `host:port`, `http://host:port` or `http://host:port/metrics`."""
    return urlsplit(metrics_url if "//" in metrics_url else f"//{metrics_url}").netloc


def check_metrics_owner(grpc_url: str, metrics_url: str) -> str | None:
    """Refuse a --metrics-url that `quantserve serve`'s records prove is not the metrics of the server at --url (the
    metrics of another recorded server, where --url's is recorded too; a gRPC or HTTP port); a warning line where one
    record alone says they differ; None where they agree or nothing is recorded. Without a record that proves it,
    two tritonserver processes listening on the two ports do (`_check_listeners`)."""
    address = metrics_address(metrics_url)
    doubt = _recorded_owner(grpc_url, metrics_url, address)  # the records name serve's pid and the port to use
    _check_listeners(grpc_url, metrics_url, address)
    return doubt


def _recorded_owner(grpc_url: str, metrics_url: str, address: str) -> str | None:
    """`check_metrics_owner` by `quantserve serve`'s records alone."""
    own, owner = find_endpoints(grpc_url), recorded_port(address)
    host = grpc_url.rpartition(":")[0]
    own_metrics = f"{host}:{own.metrics_port}" if own is not None else None
    if owner is None:
        if own is None or own_metrics == address:
            return None
        return (
            f"--metrics-url {metrics_url} is not the metrics address quantserve serve (pid {own.pid}) recorded for "
            f"the Triton server at --url {grpc_url} ({own_metrics}): its counters may be another server's; leave "
            "--metrics-url out to use the recorded one"
        )
    served, kind = owner
    if kind == "metrics" and own is not None and _same_server(served, own):
        return None
    mine = own is not None and _same_server(served, own)
    theirs = f"the Triton server at {f'--url {grpc_url}' if mine else _grpc_of(served, address)}"
    advice = (
        f"pass --metrics-url {own_metrics} or leave it out"
        if own_metrics
        else "pass the metrics address of --url's server"
    )
    if kind != "metrics":
        raise QuantserveError(
            f"--metrics-url {metrics_url} is the {kind} port of {theirs} (quantserve serve pid {served.pid}), not a "
            f"metrics address: {advice}"
        )
    line = (
        f"--metrics-url {metrics_url} is the metrics address of {theirs} (quantserve serve pid {served.pid}), not of "
        f"the one at --url {grpc_url}"
    )
    if own_metrics is None:  # --url not recorded: a proxy to that server would be no mistake
        return f"{line} (not recorded by quantserve serve): Triton's counters there may not count this load"
    raise QuantserveError(f"{line} (its metrics: {own_metrics}): {advice}")


def _check_listeners(grpc_url: str, metrics_url: str, address: str) -> None:
    """Refuse a --metrics-url on this machine that another tritonserver process listens on than --url's port (a
    proxy or Docker's, not named tritonserver, proves nothing); no record needed."""
    from loadtest.server_pids import listening_pid

    if not all(reaches_this_machine(url.rpartition(":")[0]) for url in (grpc_url, address)):
        return
    if not address.rpartition(":")[2].isdigit() or not grpc_url.rpartition(":")[2].isdigit():
        return
    theirs, ours = listening_pid(address), listening_pid(grpc_url)
    if theirs is None or ours is None or theirs == ours:
        return
    if not all(TRITONSERVER in process_name(pid) for pid in (theirs, ours)):
        return
    raise QuantserveError(
        f"--metrics-url {metrics_url} is the port of tritonserver pid {theirs}, --url {grpc_url} that of tritonserver "
        f"pid {ours}: the metrics of another Triton server; pass the metrics port of pid {ours} (8002 by default)"
    )


def process_name(pid: int) -> str:
    """The process's name ("" where it cannot be read)."""
    import psutil

    try:
        return str(psutil.Process(pid).name())
    except psutil.Error:
        return ""


def _same_server(a: ServedEndpoints, b: ServedEndpoints) -> bool:
    return a.pid == b.pid and a.grpc_port == b.grpc_port


def _grpc_of(served: ServedEndpoints, address: str) -> str:
    """The recorded server's gRPC address on the host the user named."""
    return f"{address.rpartition(':')[0]}:{served.grpc_port}"


def counted_nothing(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> bool:
    """Whether the model's counters did not move at all over the window: not listed at either end, or listed with
    every counter the same (no version added, gone, reset or counting)."""
    start, end = before.get(model), after.get(model)
    if start is None or end is None:
        return start is None and end is None
    same = start.get(VERSIONS, {}).keys() == end.get(VERSIONS, {}).keys()
    return same and all(end[name] == start[name] for name in COUNTERS)


def other_servers_counters(
    before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str, client: int
) -> str | None:
    """The note where the metrics address counted none of the `client` answers the model gave and nothing but another
    server explains it: the model not listed at either end while other models are, or listed with the same non-zero
    counters at both ends (a reload or an unload sets them back to zero). None otherwise: at zero at both ends, a
    version reloaded during the window may have taken its counts with it (`other_server_too`)."""
    if not client or not counted_nothing(before, after, model):
        return None
    if model in after and not any(after[model][name] for name in COUNTERS):
        return None
    if model in after:
        what = f"they count no request of model '{model}' over the window (its counters did not move)"
    else:
        listed = ", ".join(f"'{name}'" for name in sorted(after))
        what = f"they list no model '{model}' (only {listed})"
    return (
        f"{NO_TRITON_COUNTERS} of this load: {what} while the client got {client} answers from --url: is the metrics "
        "address another Triton server's? pass --metrics-url the metrics port of the server at --url"
    )


def other_server_too(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> str:
    """The other cause, beside a version reloaded, of a model whose counters stayed at zero over the window: words to
    add to the note, or "" where its counters moved."""
    if not counted_nothing(before, after, model):
        return ""
    return (
        f"; or the metrics address is another Triton server's, where model '{model}' counted nothing (its counters "
        "stayed at zero): pass --metrics-url the metrics port of the server at --url"
    )
