"""Where a closed-loop concurrency sweep (`loadtest --sweep 1,4,16`) stops paying: the line a user reads the sweep
for. The table holds the figures; read step by step it hid that throughput fell past the best concurrency (a slow
model at 1/4/16 users: 285.9, 353.7, 269.6 req/s at p99 14, 38, 154 ms, and nothing said so).

One line a sweep of two or more closed-loop steps of distinct user counts with answers, by where the most
throughput was:
- at a lower concurrency than the highest, and the highest gave LEVEL or less of it: throughput fell past it;
- at the highest, and the step below gave LEVEL or less of it: still rising, the server's capacity lies beyond;
  unless Triton's own counters show the highest step's batches full (an average batch of FULL or more of the model's
  max batch, from requests smaller than it): the server was at capacity there, more clients would wait in its queue
  (a probe's 16-user step, 62.73 samples of max batch 64 and 85 ms queued, was told "sweep higher"; 32 and 64 users
  served no more). Where those figures are missing (no counters, no max batch read, a config changed during the
  run), the line says "sweep higher" as before;
- otherwise it levelled off: from the first step within LEVEL of the most, more clients added latency, not
  throughput (closed-loop clients wait in Triton's queue once its instances are busy); where the counters show full
  batches from that step on, the line names the first such step, the server at capacity there (session 66).
The max batch is the run identity's `max_batch`, recorded where the identity is made; a file from before it was
recorded gives it in its config's words (`SERVED_MAX_BATCH`).
Steps cut short (interrupted, or their model gone) are left out, and the line says which. A band, not a test of
significance: these machines are shared, and the steps' own spread is not measured; the
line states what the figures show, it judges nothing (no exit status rests on it). Where other processes' share of
the cores differed by `utilization.OTHERS_SHIFT` or more between the steps it compares, the line gives the figures,
names the shares and asks for a rerun instead of reading the server's behaviour from them.
"""

from __future__ import annotations

import re

from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.utilization import others_shift

LEVEL = 0.9  # within 10 % of the most throughput: levelled off (module docstring)
FULL = 0.9  # an average batch of 90 % of the max batch or more: the batcher found full batches waiting (docstring)
# the max batch as `run_identity.served_config` words it ("no batching" has none): read in a file from before
# `RunIdentity.max_batch` alone
SERVED_MAX_BATCH = re.compile(r"^max batch (\d+),")


def sweep_note(run: LoadRun) -> str | None:
    """The sweep's one line (module docstring), or None where the run is no closed-loop sweep."""
    answered = [r for r in run.results if r.mode == ClosedLoop.mode and r.requests > r.failed_requests]
    # a step cut short (Ctrl-C, its model gone) measured part of its window: read with the others, an interrupted
    # last step's 3.6 of 10 s told the user the sweep "still rose … sweep higher" (session 52)
    steps = sorted((r for r in answered if not r.interrupted and not r.model_gone), key=lambda r: r.users)
    if len(steps) < 2 or len({r.users for r in steps}) < len(steps):
        return None
    short = sorted({r.users for r in answered} - {r.users for r in steps})
    left_out = f" (the {', '.join(map(str, short))}-user step cut short, left out)" if short else ""
    figures, reading, compared = _reading(steps, _max_batch(run.identity))
    neighbour = _neighbour(compared)
    if neighbour:
        return f"{run.name} sweep{left_out}: {figures}, but {neighbour}: rerun on a quiet machine before reading a knee"
    return f"{run.name} sweep{left_out}: {figures}: {reading}"


def _reading(steps: list[LoadResult], max_batch: int | None) -> tuple[str, str, list[LoadResult]]:
    """What the steps' figures show, what that says of the server, and the steps the two rest on. `max_batch`: the
    served model's (None: not known), against which the highest step's batches are read."""
    best, last = max(steps, key=lambda r: r.throughput_rps), steps[-1]
    most = best.throughput_rps
    if best is not last and last.throughput_rps <= LEVEL * most:
        return (
            f"throughput peaked at {_figures(best)} and fell to {_figures(last)}, "
            f"{1 - last.throughput_rps / most:.0%} less",
            f"past {_users(best.users)} more clients cost throughput as well as latency; keep the clients near "
            # not "cap Triton's queue": any queue policy stalls the batcher on the Triton we ship (README's Overload)
            f"{best.users} (a proxy's or the load balancer's concurrency limit in front of the server can hold them "
            "there; not a Triton queue policy, which stalls the batcher on Triton 2.51: server#8870)",
            [best, last],
        )
    if best is last and steps[-2].throughput_rps <= LEVEL * most:
        return (
            f"throughput still rose at the highest concurrency, {_figures(last)} against {_figures(steps[-2])}",
            f"but {full}; more clients would wait in its queue"
            if (full := _full_batches(last, max_batch))
            else "the server's capacity lies beyond this sweep; sweep higher to find it",
            [steps[-2], last],
        )
    level = next(r for r in steps if r.throughput_rps > LEVEL * most)  # below the highest: both cases above
    # from the step it levelled off at, the first whose batches were full: where the server reached its capacity
    full = next((words for r in steps[steps.index(level) :] if (words := _full_batches(r, max_batch))), None)
    return (
        f"throughput levelled off from {_figures(level)}, within {1 - LEVEL:.0%} of the most ({most:.1f} req/s at "
        f"{_users(best.users)}); at {_users(last.users)} p99 was {last.latency.p99_ms:.1f} ms",
        "more clients added latency, not throughput" + (f": {full}" if full else ""),
        [level, best, last],
    )


def _max_batch(identity: RunIdentity | None) -> int | None:
    """The served model's max batch as the run read it at its start (`RunIdentity.max_batch`; a file from before it
    was recorded: its config's words); None where not read, not batching, or changed during the run (which of the
    two served the highest step is not known)."""
    if identity is None or identity.config_changed():
        return None
    if identity.max_batch is not None:
        return identity.max_batch or None
    match = SERVED_MAX_BATCH.match(identity.config or "")
    return int(match.group(1)) if match else None


def _full_batches(step: LoadResult, max_batch: int | None) -> str | None:
    """Where Triton's counters show `step`'s batches full, the words that say the server was at capacity there; None
    where they do not, or cannot: no counters or max batch, or requests as large as a batch (each one full alone)."""
    server, rows = step.server_figures, step.request_batch
    if not max_batch or server is None or rows is None or rows >= max_batch:
        return None
    if server.avg_batch_size < FULL * max_batch:
        return None
    return (
        f"Triton's batches were full at {_users(step.users)} ({server.avg_batch_size:.1f} samples on average of "
        f"max batch {max_batch}, {server.avg_queue_us / 1000:.1f} ms queued a request): the server was at capacity "
        "there"
    )


def _neighbour(compared: list[LoadResult]) -> str | None:
    """Where other processes' share of the cores differed by `OTHERS_SHIFT` or more between the steps the line
    compares, which took the most and which the least: a busy loop during a 16-user step (51 % against 17 % at 4
    users) read as a knee, "46% less … keep the clients near 4", where, quiet, the same sweep did not fall."""
    shares = {
        r.users: r.utilization.others_share if r.utilization and not r.server_restarted else None for r in compared
    }
    shift = others_shift(shares)
    if shift is None:
        return None
    busiest, quietest = shift
    return (
        f"other processes took {shares[busiest]:.0%} of the machine's cores at {_users(busiest)} against "
        f"{shares[quietest]:.0%} at {_users(quietest)}"
    )


def _figures(result: LoadResult) -> str:
    return f"{_users(result.users)} ({result.throughput_rps:.1f} req/s, p99 {result.latency.p99_ms:.1f} ms)"


def _users(count: int) -> str:
    """`1 user`, `4 users`: the sweep line read "against 1 users"."""
    return f"{count} user{'' if count == 1 else 's'}"
