"""The sweep's line gives no advice that README warns against, and reads Triton's full batches as capacity (session
65, probe B). `--sweep 4,16,32,64` ended "keep the clients near 4 (or cap Triton's queue)", where any queue policy
stalls the batcher on the Triton we ship (server#8870, README's Overload). `--sweep 1,4,16` read "still rose … the
server's capacity lies beyond this sweep; sweep higher" while its 16-user step's own counters showed batches of 62.73
samples on average of max batch 64 and 85 ms queued a request: 32 and 64 users served no more.
"""

from __future__ import annotations

from test_load_results import make_result

from loadtest.load_run import LoadRun
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity, served_config
from loadtest.sweep_knee import sweep_note

SERVED = {"max_batch_size": 64, "dynamic_batching": {"max_queue_delay_microseconds": 500}, "instance_group": [{}]}
# the probe's steps: users, req/s, p99 ms, Triton's average batch (samples) and queue µs per request
PROBE = ((1, 77.4, 41.7, 16.0, 70.0), (4, 112.9, 94.0, 33.29, 9033.0), (16, 132.1, 242.4, 62.73, 85310.0))


def _step(users: int, rps: float, p99: float, batch: float, queue_us: float, rows: int | None = 16) -> LoadResult:
    result = make_result("digits_int8", users, seed=users)
    result.throughput_rps, result.latency.p99_ms, result.request_batch = rps, p99, rows
    assert result.server is not None
    result.server.avg_batch_size, result.server.avg_queue_us = batch, queue_us
    return result


def _run(steps: tuple[tuple[int, float, float, float, float], ...], rows: int | None = 16) -> LoadRun:
    identity = RunIdentity("2026-12-07T14:09:58Z", ["1"], config=served_config(SERVED))
    return LoadRun("digits_int8", [_step(*step, rows=rows) for step in steps], identity=identity)


def test_full_batches_at_the_highest_step_read_as_capacity_not_sweep_higher() -> None:
    assert served_config(SERVED) == "max batch 64, queue 500 µs, 1 instance"  # what the line reads max batch from
    assert sweep_note(_run(PROBE)) == (
        "digits_int8 sweep: throughput still rose at the highest concurrency, 16 users (132.1 req/s, p99 242.4 ms) "
        "against 4 users (112.9 req/s, p99 94.0 ms): but Triton's batches were full at 16 users (62.7 samples on "
        "average of max batch 64, 85.3 ms queued a request): the server was at capacity there; more clients would "
        "wait in its queue"
    )


def test_without_full_batches_or_their_figures_the_line_still_says_sweep_higher() -> None:
    half = _run((*PROBE[:2], (16, 132.1, 242.4, 50.0, 20000.0)))  # 50 of 64: below 90 %
    unknown = _run(PROBE)
    unknown.identity = None  # no max batch read: nothing new is said
    no_counters = _run(PROBE)
    no_counters.results[-1].server = None
    whole_requests = _run(PROBE, rows=64)  # each request a whole batch: full at any concurrency, says nothing
    changed = _run(PROBE)
    assert changed.identity is not None
    changed.identity.config_at_end = "max batch 128, queue 500 µs, 1 instance"  # redeployed during the sweep
    for run in (half, unknown, no_counters, whole_requests, changed):
        note = sweep_note(run)
        assert note is not None and note.endswith("sweep higher to find it") and "full" not in note


def test_throughput_falling_advises_a_limit_in_front_of_the_server_not_a_triton_queue_policy() -> None:
    note = sweep_note(_run(((4, 112.9, 94.0, 33.3, 9000.0), (16, 74.6, 400.0, 64.0, 367000.0))))
    assert note is not None
    assert "cap Triton's queue" not in note
    assert note.endswith(
        "keep the clients near 4 (a proxy's or the load balancer's concurrency limit in front of the server can hold "
        "them there; not a Triton queue policy, which stalls the batcher on Triton 2.51: server#8870)"
    )
