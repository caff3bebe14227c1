"""A step's failed requests in words: how many and why, and beside Triton's own failure counter.

Triton's `nv_inference_request_failure` misses most failures a client sees, and counts others the client never
sent; these notes say which is which (`LoadResult.failure_note`, `LoadResult.server_failures_note`).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.send_lag import queue_refused
from loadtest.timeline import Outage
from loadtest.triton_metrics import ServerBreakdown
from loadtest.window_notes import errors_clause


@dataclass(frozen=True)
class ClientFailures:
    """A step's failures as the client counted them (`LoadResult.client_failures`)."""

    label: str
    requests: int  # answered or failed in the window
    failed: int
    deadline: int  # of them, at the client's deadline (gRPC's DEADLINE_EXCEEDED, --request-timeout)
    late: int  # ... of those, answered by Triton anyway after the client had given up (`late_answers`)
    errors: dict[str, int]  # Locust's error table: {error: count}
    lost_workers: bool  # a Locust worker died before the end: its requests are in no client count


def late_answers(server: ServerBreakdown | None, answered: int, deadline_failures: int) -> int:
    """The client's deadline failures Triton answered anyway, after it had given up: the successes it counted
    beyond the client's `answered` (at most the deadline failures); 0 without its counters."""
    if server is None or not deadline_failures:
        return 0
    return min(deadline_failures, max(0, server.requests_succeeded - answered))


def failed_reasons(reasons: dict[str, int]) -> str:
    """Triton's failures by `reason`, those counted: "2 REJECTED, 1 BACKEND" ("" for none)."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda r: -r[1]) if n > 0)


def others_failures(client: ClientFailures, server_failed: int, server: ServerBreakdown | None) -> str | None:
    """Failures Triton counted over the window beyond the client's (no Locust worker lost): another client's,
    its requests cancelled mid-flight; None where there are none."""
    if server_failed <= client.failed or client.lost_workers:
        return None
    reasons = failed_reasons(server.failure_reasons if server else {})
    return (
        f"{server_failed} failed requests where the client had {client.failed}"
        + (f" ({reasons})" if reasons else "")
        + ": another client's (e.g. CANCELED, killed mid-flight)"
    )


def server_failures_note(client: ClientFailures, server: ServerBreakdown | None) -> str | None:
    """One line when Triton's failure counter over the window is below the client's failed requests: Triton's
    `nv_inference_request_failure` misses most failures (measured with the venv's tritonserver, ONNX Runtime
    backend: a Gather index out of range counted as a success, a wrong shape, data type or input name refused before
    the model in no counter); where it labels them by `reason` (REJECTED, CANCELED, BACKEND, OTHER: Triton 24.x+),
    those are named (`_by_reason`). Above the client's, the failures were another client's (its requests cancelled
    mid-flight: CANCELED), and its load is in Triton's figures (session 47: 60 Triton counted where this client had
    none, said nowhere)."""
    if server is not None and (others := others_failures(client, server.requests_failed, server)):
        return (
            f"{client.label}: Triton counted {others} loaded the model too, so Triton's server-side figures (avg "
            "batch, queue, infer) are not this load's alone"
        )
    if server is None or client.failed <= server.requests_failed:
        return None
    refused = queue_refused(client.errors)  # session 49: 17285 'Exceeds maximum queue size', Triton's counter at 0
    queue = (
        f"; {refused} of them its queue refused (max_queue_size reached or its timeout spent: Triton 2.51 counts "
        "those in no counter either)"
        if refused
        else ""
    )
    read = (
        f"{client.label}: Triton's failure counter (nv_inference_request_failure) read {server.requests_failed} "
        f"over the window where the client had {client.failed} requests fail: "
    )
    if not server.failure_reasons:  # a server without the `reason` label (before Triton 24.x), an older file
        return read + (
            "Triton counts a request its backend failed (an ONNX Runtime error, e.g. an index out of range) as a "
            "success, one it refused before the model (a wrong shape, data type or input name) in no counter, "
            "and the client's own failures (its deadline, a lost connection, a wrong answer) never reach it; the "
            f"client's count is the failures{queue}"
        )
    return read + _by_reason(client, server.failure_reasons) + f"; the client's count is the failures{queue}"


def _by_reason(client: ClientFailures, reasons: dict[str, int]) -> str:
    """What Triton's failures by `reason` say of the client's: those of its deadline Triton cancelled before they
    ran (CANCELED) and those it ran anyway (`late_answers`), other reasons by name, then what no counter shows.
    Session 57: 364 CANCELED read as failures "never reaching" Triton, where they were 364 of the client's 1673
    deadline failures (and 1310 more were answered after it gave up)."""
    parts, explained = [], 0
    canceled, deadline = reasons.get("CANCELED", 0), client.deadline
    if canceled and deadline:
        mine = min(canceled, deadline)
        in_all = f", {canceled} CANCELED in all" if canceled > deadline else ""
        parts.append(
            f"{mine} of the client's {deadline} deadline failures were cancelled by Triton before they ran "
            f"(reason CANCELED{in_all})"
        )
        explained += mine
    elif canceled:
        parts.append(f"{canceled} were cancelled by Triton before they ran (reason CANCELED: a client gave up)")
        explained += canceled
    if client.late:
        parts.append(f"about {client.late} ran anyway, answered after the client's deadline (successes to Triton)")
        explained += client.late
    if others := failed_reasons({r: n for r, n in reasons.items() if r != "CANCELED"}):
        parts.append(f"Triton's other failures by reason: {others}")
        explained += sum(n for r, n in reasons.items() if r != "CANCELED")
    if explained < client.failed:
        parts.append(
            ("the rest are in no failure count: " if parts else "")
            + "Triton counts a request its backend failed (an ONNX Runtime error, e.g. an index out of range) as a "
            "success, one it refused before the model (a wrong shape, data type or input name) in no counter, and "
            "the client's other failures (a lost connection, a wrong answer) never reach it"
        )
    return "; ".join(parts)


def failed_share_line(client: ClientFailures) -> str:
    """`label: F of N requests failed (P %)`; where Locust's error table counts more, it says the window."""
    share = client.failed / client.requests if client.requests else 1.0
    failed = "ended failed in the window" if sum(client.errors.values()) > client.failed else "failed"
    return f"{client.label}: {client.failed} of {client.requests} requests {failed} ({100 * share:.1f} %)"


def failure_note(client: ClientFailures, outages: list[Outage]) -> str | None:
    """One line when requests failed: how many, the commonest error (`errors_clause`), and the outages."""
    if not client.failed:
        return None
    line = failed_share_line(client) + errors_clause(client.errors, client.failed)
    if outages:
        worst = max(outages, key=lambda o: o.duration_s)
        line += (
            f"; {len(outages)} outage(s), the longest {worst.duration_s:.1f} s without a success "
            f"(t = {worst.start_s:.2f}–{worst.end_s:.2f} s)"
        )
    return line + "; throughput and latency count successes only"
