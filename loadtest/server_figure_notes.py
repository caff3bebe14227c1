"""Notes on Triton's own figures of a step: left out (a server replaced, versions changed, counters unread, a
Locust worker lost), or showing that most of the latency was spent outside the server (`LoadResult`'s notes)."""

from __future__ import annotations

from loadtest.triton_metrics import ServerBreakdown


def outside_fraction(mode: str, mean_ms: float, server: ServerBreakdown | None) -> float | None:
    """The share of a closed loop's mean latency spent outside Triton (the client's mean less Triton's own time per
    request, from its counters), however small: `tune` records it per trial; None for an open loop, where the
    counters are missing, or where the client measured no latency."""
    if mode == "open" or server is None or not server.avg_request_us > 0:
        return None
    if not mean_ms > 0:
        return None
    return max(0.0, mean_ms - server.avg_request_us / 1000) / mean_ms


def outside_server_note(label: str, share: float, avg_request_us: float, mean_ms: float) -> str:
    """One line when most of a closed loop's latency was spent outside Triton (`share`: `LoadResult.outside_share`):
    its own time per request (queue and compute, from its counters) against the client's mean. The rest is the load
    generator (Python gRPC users, their CPU shared here with the server), serialization and transfer: the latencies
    measure the client too."""
    return (
        f"{label}: Triton's own time per request averaged {avg_request_us / 1000:.1f} ms, the "
        f"client measured {mean_ms:.1f} ms (mean): {share:.0%} of the latency was spent "
        "outside the server (the load generator's CPU, serialization, transfer), so these figures measure the "
        "client too; fewer users, --workers N, or the load from another machine show the server's own"
    )


def restart_note(label: str, server_restarted: str, stopped: bool) -> str:
    """One line when tritonserver was replaced (or `stopped`, none in its place) during the window, so its own
    figures were left out."""
    what = "stopped" if stopped else "restarted"
    return (
        f"{label}: tritonserver {what} during the measured window ({server_restarted}); its "
        "counters and the CPU/memory samples cover only part of the window, so the server-side figures (avg "
        "batch, queue, infer, utilization) are left out; the client's figures stand"
    )


def counters_note(label: str, left_out: str) -> str:
    """One line when the model's served versions changed (or its counters disagree with the client's) during the
    window, so Triton's own figures were left out (`left_out`: why)."""
    return (
        f"{label}: {left_out}, so its server-side figures (avg batch, queue, infer) are left out; the client's figures "
        "stand"
    )


def lost_workers_note(label: str, lost_workers: list[str]) -> str:
    """One line when Locust worker processes died before the end: their users' requests are in no figure."""
    return (
        f"{label}: Locust {', '.join(lost_workers)} before the end; its users' requests are lost "
        "(the figures cover the other processes only), so the run failed"
    )


def metrics_note(label: str, missing: str) -> str:
    """One line when Triton's metrics endpoint gave nothing at an end of the window (`missing`: why)."""
    return f"{label}: server-side figures left out, Triton's counters could not be read ({missing})"
