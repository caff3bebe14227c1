"""The report's INT8-vs-FP32 served speed pairs only runs that compare, from steps that stand for their variant.

A prober merged results folders (`cp -r`, then another `loadtest --out` into it) and got "PASS · INT8 1.10× FP32" from
FP32 at 1 sample a request against INT8 at 8, "FAIL · INT8 9.72× FP32" from an FP32 step with 27.5 % of its
requests failed and versions 1 → 2 in its window, runs of two machines under one "Machine:" line, "load-test an FP32
and an INT8 variant" for FP32 at 1 user and INT8 at 16, and no word of 3 CPU burners beside the server. Results here
are written and read by the code's own `LoadRun.save`/`load` (the report reads them back), with chosen figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.timeline import Outage
from loadtest.triton_metrics import ServerBreakdown
from loadtest.utilization import Utilization

MACHINE = {"client_host": "loadbox", "client_cpu": "AMD EPYC 9B14", "client_cores": 2}


def _step(model: str, users: int, rps: float, batch: int = 1, url: str = "127.0.0.1:8001") -> LoadResult:
    latency = LatencySummary(int(rps * 10), 2.0, 3.0, 3.5, 4.0, 2.2, 1.0, 5.0)
    return LoadResult(model, url, "closed", users, 10.0, int(rps * 10), 0, rps, rps * batch, latency, batch)


def _save(folder: Path, model: str, steps: list[LoadResult], **machine: object) -> None:
    identity = RunIdentity("2026-12-01T04:20:05Z", ["1"], "sha256:src", "load.npz", "sha256:data")
    for name, value in {**MACHINE, **machine}.items():
        setattr(identity, name, value)
    precision = "int8" if "int8" in model else "fp32"
    LoadRun(model, steps, precision=precision, identity=identity).save(folder)


def _headline(folder: Path) -> str:
    return verdict_headline(load_results(folder).verdict)


def test_runs_of_different_request_batches_get_no_ratio_and_one_batch_pairs(tmp_path: Path) -> None:
    """The probe: FP32 at --request-batch 1 (1298.5 req/s) and INT8 at 8 (1422.8 req/s, 11382.7 inferences/s)."""
    _save(tmp_path, "mlp", [_step("mlp", 4, 1298.5)])
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 4, 1422.8, batch=8)])
    assert _headline(tmp_path) == (
        "No verdict: mlp_int8 and mlp were load-tested with different request sizes (--request-batch 8 vs 1, "
        "load-mlp_int8.json vs load-mlp.json): their req/s do not compare, no INT8-vs-FP32 verdict; load-test both "
        "with one --request-batch"
    )
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 4, 2597.0)])
    assert _headline(tmp_path).startswith("PASS · INT8 2.00× FP32 served (mlp_int8 vs mlp, 2597.0 vs 1298.5 req/s")


@pytest.mark.parametrize(
    ("fp32_url", "int8_url", "workers", "paired"),
    [
        ("127.0.0.1:8001", "127.0.0.1:9001", 0, False),
        ("localhost:8001", "127.0.0.1:8001", 0, True),
        ("127.0.0.1:8001", "127.0.0.1:8001", 2, False),
    ],
)
def test_runs_against_other_servers_or_with_other_workers_get_no_ratio(
    tmp_path: Path, fp32_url: str, int8_url: str, workers: int, paired: bool
) -> None:
    _save(tmp_path, "mlp", [_step("mlp", 4, 1000.0, url=fp32_url)])
    int8 = _step("mlp_int8", 4, 1500.0, url=int8_url)
    int8.workers = workers
    _save(tmp_path, "mlp_int8", [int8])
    headline = _headline(tmp_path)
    if paired:
        assert headline.startswith("PASS · INT8 1.50× FP32 served"), headline
    elif workers:
        assert headline.startswith(
            "No verdict: mlp_int8 and mlp were load-tested from different numbers of Locust worker processes "
            "(--workers 2 vs 0, load-mlp_int8.json vs load-mlp.json)"
        ), headline
    else:
        assert headline.startswith(
            "No verdict: mlp_int8 and mlp were load-tested against different servers (127.0.0.1:9001 vs "
            "127.0.0.1:8001, load-mlp_int8.json vs load-mlp.json)"
        ), headline


def test_runs_from_different_client_machines_get_no_ratio(tmp_path: Path) -> None:
    _save(tmp_path, "mlp", [_step("mlp", 16, 1472.1)])
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 16, 1236.0)], client_host="otherbox", client_cores=16)
    assert _headline(tmp_path) == (
        "No verdict: mlp_int8 and mlp were load-tested from different client machines (otherbox (AMD EPYC 9B14, 16 "
        "cores) vs loadbox (AMD EPYC 9B14, 2 cores), load-mlp_int8.json vs load-mlp.json): their req/s measure two "
        "machines, no INT8-vs-FP32 verdict; load-test both from one machine"
    )


def _broken(model: str, users: int) -> LoadResult:
    """The probe's FP32 step: 626 of 2279 requests failed, 17.6 s without a success, versions 1 → 2."""
    step = _step(model, users, 82.1)
    step.requests, step.failed_requests, step.outages = 2279, 626, [Outage(2.53, 20.13, 626)]
    step.server_counters_left_out = (
        f"model '{model}' served versions changed during the window (1 → 2): Triton's counters of an unloaded "
        "version are gone"
    )
    return step


def test_a_step_with_failures_and_a_version_change_does_not_feed_the_ratio(tmp_path: Path) -> None:
    _save(tmp_path, "mlp", [_broken("mlp", 2)])
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 2, 798.0)])
    verdict = load_results(tmp_path).verdict
    assert verdict.served is None and not verdict.passed
    assert verdict_headline(verdict) == (
        "FAIL · served INT8 vs FP32 not measured (mlp @ 2 users (load-mlp.json) is left out of the served "
        "INT8-vs-FP32 speed: 27.5 % of its requests failed (more than 2%); model 'mlp' served versions changed "
        "during the window (1 → 2); no other step of both at one user count is left to compare)"
    )


def test_a_sound_step_at_a_lower_count_is_compared_and_the_left_out_one_said(tmp_path: Path) -> None:
    interrupted = _step("mlp_int8", 8, 900.0)
    interrupted.interrupted, interrupted.planned_window_s = True, 20.0
    _save(tmp_path, "mlp", [_step("mlp", 1, 300.0), _step("mlp", 8, 800.0)])
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 1, 450.0), interrupted])
    verdict = load_results(tmp_path).verdict
    assert verdict.served is not None and verdict.served.users == 1 and verdict.served.speedup == 1.5
    assert (
        "mlp_int8 @ 8 users (interrupted: 10.0 of 20 s measured) (load-mlp_int8.json) is left out of the served "
        "INT8-vs-FP32 speed: it was interrupted before its planned end"
    ) in verdict.notes


def test_variants_loaded_at_no_common_user_count_say_so(tmp_path: Path) -> None:
    _save(tmp_path, "mlp", [_step("mlp", 1, 618.9)])
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 16, 1236.0)])
    assert _headline(tmp_path) == (
        "No verdict: no user count in common: FP32 mlp at 1 user (load-mlp.json), INT8 mlp_int8 at 16 users "
        "(load-mlp_int8.json); load-test both at one count (--users N)"
    )


def test_an_open_loop_run_against_a_closed_loop_one_says_why_there_is_no_ratio(tmp_path: Path) -> None:
    _save(tmp_path, "mlp", [_step("mlp", 4, 1000.0)])
    open_loop = _step("mlp_int8", 1, 590.3)
    open_loop.mode, open_loop.rate_rps, open_loop.arrivals = "open", 600.0, "constant"
    _save(tmp_path, "mlp_int8", [open_loop])
    assert _headline(tmp_path) == (
        "No verdict: no closed-loop runs of both to compare (mlp_int8 in open loop only (load-mlp_int8-open.json), "
        "mlp in closed loop (load-mlp.json)): the served verdict compares mlp_int8 and mlp at one user count; "
        "load-test both with --users N"
    )


def test_a_busy_machine_and_latency_outside_the_server_are_caveats_on_the_ratio(tmp_path: Path) -> None:
    """3 CPU burners on 2 cores: the server took 0.28 of a core, the generator 0.4, the machine all 2."""
    busy = _step("mlp", 4, 349.3)
    busy.utilization = Utilization("psutil", "no GPU", 20, process_cpu_pct_mean=28.0)
    busy.utilization.machine_cpu_pct_mean, busy.utilization.generator_cpu_pct_mean = 198.0, 40.0
    busy.utilization.cpu_count = 2
    client_bound = _step("mlp_int8", 4, 1236.0)
    client_bound.latency = LatencySummary(12360, 11.0, 14.0, 15.0, 18.0, 11.6, 2.0, 25.0)
    client_bound.server = ServerBreakdown(12360, 0, 12360, 9000, 1.37, 1700.0, 100.0, 1500.0, 50.0, 30.0)
    _save(tmp_path, "mlp", [busy])
    _save(tmp_path, "mlp_int8", [client_bound])
    md = render(tmp_path)[0].read_text()
    headline = re.search(r"\*\*(.+)\*\*", md).group(1)  # type: ignore[union-attr]
    assert headline.startswith(
        "PASS · INT8 3.54× FP32 served (mlp_int8 vs mlp, 1236.0 vs 349.3 req/s at 4 users), caveat: others took 65% "
        "of the cores during mlp @ 4 users; 85% of the latency of mlp_int8 @ 4 users was spent outside the server"
    ), headline
    assert "- Busy machine: mlp @ 4 users: other processes (neither tritonserver nor the load generator) took 65%" in md
    assert "server CPU 28% · RSS – MB · machine CPU 198% of 2 cores, others 65%" in md
