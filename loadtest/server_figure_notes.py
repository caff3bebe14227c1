"""Notes on Triton's own figures of a step: left out (a server replaced, versions changed, counters unread, a
Locust worker lost), or showing that most of the latency was spent outside the server (`LoadResult`'s notes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadtest.triton_metrics import SUMMARY_WINDOW_S, ServerBreakdown


@dataclass(frozen=True)
class ClientPercentiles:
    """What the client measured of a step, set beside Triton's own request percentiles (`server_percentiles_note`)."""

    p50_ms: float
    p99_ms: float
    window_s: float
    send_lag_p99_ms: float | None = None  # open loop: how late the slowest requests left the client


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


def server_percentiles_note(label: str, server: ServerBreakdown | None, client: ClientPercentiles) -> str | None:
    """One line with Triton's own request p50/p99 (its latency summary, `triton_metrics.request_quantiles`) beside the
    client's, and what lies between them; None where the server exports no summary. A probe's open loop read p99
    160.55 ms at the client, 94.0 ms in Triton: the rest was the client's send lag."""
    if server is None or server.request_p50_us is None or server.request_p99_us is None:
        return None
    p50, p99 = server.request_p50_us / 1000, server.request_p99_us / 1000
    own = f"{label}: Triton's own request latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    span = (
        f"Triton's are quantiles over its last {SUMMARY_WINDOW_S[0]:g}–{SUMMARY_WINDOW_S[1]:g} s before the window's "
        f"end, of every client's requests to the model{_summary_window_words(client.window_s)}"
    )
    if not (math.isfinite(client.p50_ms) and math.isfinite(client.p99_ms)):  # it read "the client's p50 nan ms"
        return f"{own}; the client measured no request to set beside them. {span}"
    lag = f"the client's send lag (p99 {client.send_lag_p99_ms:.1f} ms), " if client.send_lag_p99_ms else ""
    gap = client.p99_ms - p99
    between = (
        f"the client's p99 is {gap:.1f} ms above Triton's: time spent outside Triton's request handling, {lag}the "
        "load generator's CPU, serialization, gRPC and the network"
        if gap >= 0
        else f"Triton's p99 is {-gap:.1f} ms above the client's: its window held slower requests the client did not "
        "measure"
    )
    return f"{own}; the client's p50 {client.p50_ms:.1f} ms, p99 {client.p99_ms:.1f} ms; {between}. {span}"


def _summary_window_words(window_s: float) -> str:
    """Where Triton's sliding window does not match the step's measured window: a shorter step's figures take in
    requests from before it (the warm-up, an earlier step), a longer one's only its end."""
    shortest, longest = SUMMARY_WINDOW_S
    if window_s < shortest:
        return f" (this window ran {window_s:.1f} s: they take in the requests of a warm-up or step before it)"
    if window_s > longest:
        return f" (this window ran {window_s:.1f} s: they cover its end only)"
    return ""


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
