"""Where a closed-loop concurrency sweep (`loadtest --sweep 1,4,16`) stops paying: the line a user reads the sweep
for. The table holds the figures; read step by step it hid that throughput fell past the best concurrency (a slow
model at 1/4/16 users: 285.9, 353.7, 269.6 req/s at p99 14, 38, 154 ms, and nothing said so).

One line a sweep of two or more closed-loop steps of distinct user counts with answers, by where the most
throughput was:
- at a lower concurrency than the highest, and the highest gave LEVEL or less of it: throughput fell past it;
- at the highest, and the step below gave LEVEL or less of it: still rising, the server's capacity lies beyond;
- otherwise it levelled off: from the first step within LEVEL of the most, more clients added latency, not
  throughput (closed-loop clients wait in Triton's queue once its instances are busy).
A band, not a test of significance: these machines are shared, and the steps' own spread is not measured; the
line states what the figures show, it judges nothing (no exit status rests on it).
"""

from __future__ import annotations

from loadtest.load_pattern import ClosedLoop
from loadtest.results import LoadResult, LoadRun

LEVEL = 0.9  # within 10 % of the most throughput: levelled off (module docstring)


def sweep_note(run: LoadRun) -> str | None:
    """The sweep's one line (module docstring), or None where the run is no closed-loop sweep."""
    steps = sorted(
        (r for r in run.results if r.mode == ClosedLoop.mode and r.requests > r.failed_requests),
        key=lambda r: r.users,
    )
    if len(steps) < 2 or len({r.users for r in steps}) < len(steps):
        return None
    best, last = max(steps, key=lambda r: r.throughput_rps), steps[-1]
    most = best.throughput_rps
    if best is not last and last.throughput_rps <= LEVEL * most:
        return (
            f"{run.name} sweep: throughput peaked at {_figures(best)} and fell to {_figures(last)}, "
            f"{1 - last.throughput_rps / most:.0%} less: past {best.users} users more clients cost throughput as "
            f"well as latency; keep the clients near {best.users} (or cap Triton's queue)"
        )
    if best is last and steps[-2].throughput_rps <= LEVEL * most:
        return (
            f"{run.name} sweep: throughput still rose at the highest concurrency, {_figures(last)} against "
            f"{_figures(steps[-2])}: the server's capacity lies beyond this sweep; sweep higher to find it"
        )
    level = next(r for r in steps if r.throughput_rps > LEVEL * most)  # below the highest: both cases above
    return (
        f"{run.name} sweep: throughput levelled off from {_figures(level)}, within {1 - LEVEL:.0%} of the most "
        f"({most:.1f} req/s at {best.users} users); at {last.users} users p99 was {last.latency.p99_ms:.1f} ms: "
        f"more clients added latency, not throughput"
    )


def _figures(result: LoadResult) -> str:
    return f"{result.users} users ({result.throughput_rps:.1f} req/s, p99 {result.latency.p99_ms:.1f} ms)"
