"""Results round-trip through JSON, and reports are rendered from that JSON alone."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary, cdf_points
from loadtest.report import load_results, render
from loadtest.results import LoadResult
from loadtest.svg_plots import nice_ticks
from loadtest.triton_metrics import ServerBreakdown
from loadtest.utilization import Utilization
from quantserve.errors import QuantserveError


def make_result(model: str, users: int, seed: int) -> LoadResult:
    latencies = np.random.default_rng(seed).gamma(4.0, users / 2.0, size=500)
    # Triton's own time per request: 90 % of the client's mean (2 × users ms), as with a server-bound load
    inside_us = 1800.0 * users
    server = ServerBreakdown(500, 0, 500, 500 // users, float(users), inside_us, inside_us / 3, 10.0, 500.0, 20.0)
    return LoadResult(
        model=model,
        url="127.0.0.1:8001",
        mode="closed",
        users=users,
        window_s=5.0,
        requests=500,
        failed_requests=0,
        throughput_rps=100.0 * users,
        inferences_per_s=100.0 * users,
        latency=LatencySummary.from_samples(latencies),
        server=server,
        utilization=Utilization("psutil", "no NVIDIA GPU (test)", samples=3, process_cpu_pct_mean=50.0),
        cdf=cdf_points(latencies),
    )


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    for model in ("m_fp32", "m_int8"):
        LoadRun(model, [make_result(model, u, u) for u in (1, 4, 16)]).save(tmp_path)
    variants = [
        VariantAccuracy("m_fp32", 100, 1.0, 0.0, 0.0, 0.95, 0.95, 0.95, 0.95, 0.99, 0.97, 0.0),
        VariantAccuracy("m_int8", 100, 0.99, 0.01, 0.1, 0.90, 0.9, 0.9, 0.9, 0.98, 0.96, 5.0),
    ]
    AccuracyReport("m_fp32", "heldout.npz", "logits", True, 1.0, variants).save(tmp_path)
    return tmp_path


def test_load_run_round_trip(tmp_path: Path) -> None:
    run = LoadRun("m", [make_result("m", 4, 0)])
    path = run.save(tmp_path)
    back = LoadRun.load(path)
    assert back == run
    assert back.results[0].avg_batch_size == 4.0
    assert back.results[0].latency_p99_ms == run.results[0].latency.p99_ms


def test_open_loop_runs_are_saved_beside_closed_ones(tmp_path: Path) -> None:
    closed = LoadRun("m", [make_result("m", 4, 0)])
    open_result = make_result("m", 1, 1)
    open_result.mode, open_result.rate_rps, open_result.arrivals = "open", 50.0, "poisson"
    open_run = LoadRun("m", [open_result])
    assert closed.save(tmp_path).name == "load-m.json"
    assert open_run.save(tmp_path).name == "load-m-open.json"
    assert open_run.name == "m (open loop)" and open_result.label == "m @ 50 req/s poisson"
    md = (render(tmp_path)[0]).read_text()
    assert "| m @ 50 req/s poisson |" in md and "| m @ 4 users |" in md


def test_an_open_loop_that_sent_late_says_so_in_the_report(tmp_path: Path) -> None:
    """Send lag (arrival time to the request leaving the client) above 10 ms at p99 is the client's wait, inside
    the latencies: one line says so; on time, or closed loop (no arrival times), nothing is said."""
    on_time, slots, generator = make_result("m", 1, 1), make_result("m", 1, 2), make_result("m", 1, 3)
    for result, lags in ((on_time, (0.2, 3.0, 1.0)), (slots, (4.0, 180.0, 2.0)), (generator, (30.0, 90.0, 85.0))):
        result.mode, result.rate_rps, result.arrivals, result.max_in_flight = "open", 50.0, "constant", 64
        result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = lags
    assert on_time.send_lag_note() is None and make_result("m", 4, 0).send_lag_note() is None
    note = slots.send_lag_note()
    assert note is not None and note.startswith("m @ 50 req/s constant: requests left the client up to 180 ms")
    assert "all 64 in-flight slots were taken" in note and "--max-in-flight" in note
    assert "the load generator fell behind its schedule (p99 85 ms late" in (generator.send_lag_note() or "")
    slots.peak_in_flight = 64  # the slots were all in use: the same line
    assert slots.send_lag_note() == note
    threads = make_result("m", 1, 4)
    threads.mode, threads.rate_rps, threads.arrivals, threads.max_in_flight = "open", 50.0, "constant", 512
    threads.send_lag_p50_ms, threads.send_lag_p99_ms, threads.generator_lag_p99_ms = 0.9, 12.3, 1.0
    threads.peak_in_flight = 9  # never near the cap: not "all slots taken", the client's own threads were late
    late = threads.send_lag_note() or ""
    assert "at most 9 of its 512 in-flight slots were in use" in late and "slots were taken" not in late
    LoadRun("m", [slots]).save(tmp_path)
    assert f"- Sent late: {note}" in render(tmp_path)[0].read_text()


def test_a_full_in_flight_pool_is_blamed_over_a_small_generator_lag() -> None:
    """A bursty trace: 3.8 s of send lag, 53 ms of it the generator's; the pool was full (346 waiting on 64 slots):
    the server was slower than the offered rate, not the client's CPU."""
    bursty = make_result("m", 1, 5)
    bursty.mode, bursty.rate_rps, bursty.arrivals, bursty.max_in_flight = "open", 50.0, "constant", 64
    bursty.send_lag_p50_ms, bursty.send_lag_p99_ms, bursty.generator_lag_p99_ms = 400.0, 3780.0, 53.0
    bursty.peak_in_flight = 346
    note = bursty.send_lag_note() or ""
    assert "all 64 in-flight slots were taken, so requests waited for a free in-flight slot" in note
    assert "the server answered slower than the offered rate; raise --max-in-flight or lower the rate" in note
    assert "fell behind its schedule" not in note and "--workers" not in note
    bursty.generator_lag_p99_ms = 3000.0  # the generator's own lag is most of it: its CPU
    assert "the load generator fell behind its schedule (p99 3000 ms late" in (bursty.send_lag_note() or "")


def test_arrivals_never_sent_are_counted_apart_and_said(tmp_path: Path) -> None:
    """Open loop above capacity: most arrivals still waited in the client at the stop; the result says how many."""
    over = make_result("m", 1, 6)
    over.mode, over.rate_rps, over.arrivals, over.requests = "open", 400.0, "constant", 655
    assert over.unsent_note() is None
    over.offered_requests, over.unsent = 4680, 4025
    note = over.unsent_note()
    assert note is not None and note.startswith(
        "m @ 400 req/s constant: offered 4680 requests, 655 answered, 4025 never sent: the server's capacity was "
        "below the offered rate"
    )
    assert note in over.notes()
    LoadRun("m", [over]).save(tmp_path)
    assert LoadRun.load(tmp_path / "load-m-open.json").results[0].unsent == 4025
    assert f"- Unsent: {note}" in render(tmp_path)[0].read_text()
    from quantserve.cli.commands.loadtest import failure_status

    assert failure_status([LoadRun("m", [over])], allowed=False) == 1
    assert failure_status([LoadRun("m", [over])], allowed=True) == 0


def test_a_lost_locust_worker_is_said_and_fails_the_step(tmp_path: Path) -> None:
    """A worker killed mid-run leaves "@ 4 users", 0 failed: the result names it and counts as failing."""
    lost = make_result("m", 4, 7)
    assert not lost.has_failures and lost.lost_workers_note() is None
    lost.workers, lost.lost_workers = 2, ["worker1 killed by SIGKILL"]
    note = lost.lost_workers_note()
    assert note == (
        "m @ 4 users: Locust worker1 killed by SIGKILL before the end; its users' requests are lost (the figures "
        "cover the other processes only), so the run failed"
    )
    assert lost.has_failures and note in lost.notes()
    LoadRun("m", [lost]).save(tmp_path)
    assert LoadRun.load(tmp_path / "load-m.json").results[0].lost_workers == ["worker1 killed by SIGKILL"]
    assert f"- Workers: {note}" in render(tmp_path)[0].read_text()
    from quantserve.cli.commands.loadtest import failure_status

    assert failure_status([LoadRun("m", [lost])], allowed=False) == 1


def test_failures_and_a_restarted_server_are_said_and_set_the_exit_status(tmp_path: Path) -> None:
    from loadtest.timeline import Outage
    from quantserve.cli.commands.loadtest import failure_status

    clean, broken = make_result("m", 8, 1), make_result("m", 8, 2)
    assert clean.notes() == [] and failure_status([LoadRun("m", [clean])], allowed=False) == 0
    broken.failed_requests, broken.errors = 40, {"TritonRequestFailed('[StatusCode.UNAVAILABLE] …')": 38, "x": 2}
    broken.outages = [Outage(11.0, 15.0, 36)]
    broken.server_restarted, broken.server, broken.utilization = (
        "pid 1 listened on its port at the start, pid 2 …",
        None,
        None,
    )
    failure, restart = broken.notes()
    assert failure.startswith("m @ 8 users: 40 of 500 requests failed (8.0 %); 38 × TritonRequestFailed(")
    assert "1 outage(s), the longest 4.0 s without a success (t = 11.00–15.00 s)" in failure
    assert "tritonserver restarted during the measured window (pid 1" in restart and "left out" in restart
    run = LoadRun("m", [clean, broken])
    assert failure_status([run], allowed=False) == 1 and failure_status([run], allowed=True) == 0
    run.save(tmp_path)
    markdown = render(tmp_path)[0].read_text()
    assert f"- Restart: {restart}" in markdown
    assert LoadRun.load(tmp_path / "load-m.json").results[1].server_restarted == broken.server_restarted


def test_nan_survives_json(tmp_path: Path) -> None:
    result = make_result("m", 1, 0)
    result.server = None
    result.latency = LatencySummary.from_samples([])
    back = LoadRun.load(LoadRun("m", [result]).save(tmp_path)).results[0]
    assert math.isnan(back.latency.p50_ms) and math.isnan(back.avg_batch_size)


def test_accuracy_budget(results_dir: Path) -> None:
    report = AccuracyReport.load(results_dir / "accuracy.json")
    assert report.over_budget == ["m_int8"]
    report.max_accuracy_drop = 10.0
    assert report.over_budget == []


def test_markdown_and_html_from_json(results_dir: Path) -> None:
    md_path, html_path = render(results_dir)
    md, html = md_path.read_text(), html_path.read_text()
    assert "| m_int8 @ 16 users | 500 | 0 | 1600.0 |" in md
    assert "OVER BUDGET: m_int8" in md
    assert html.count("<svg") == 5
    assert not re.search(r"(src|href)=|https?://|@import", html), "the HTML must not reference anything outside it"
    assert html.count("<circle") >= 12  # markers of throughput, p99 and latency–throughput charts


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="no load-"):
        load_results(tmp_path)
    with pytest.raises(QuantserveError, match="not found"):
        load_results(tmp_path / "missing")


def test_corrupt_results_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "load-x.json").write_text("{not json")
    with pytest.raises(QuantserveError, match="not a readable results file"):
        load_results(tmp_path)


def test_json_is_plain_data(results_dir: Path) -> None:
    data = json.loads((results_dir / "load-m_fp32.json").read_text())
    assert data["results"][0]["server"]["avg_batch_size"] == 1.0


@pytest.mark.parametrize(("low", "high"), [(0, 1), (1, 16), (0, 2286), (3.2, 3.2), (0, 1.4e5)])
def test_nice_ticks_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 12


def test_a_closed_loop_whose_latency_is_mostly_outside_triton_says_so() -> None:
    """500 users on 2 shared cores: 243 ms at the client for 36.7 ms in Triton, and nothing said so."""
    crowded = make_result("m", 500, 6)  # client mean ≈ 1000 ms (gamma 4 × 250 ms)
    crowded.server = ServerBreakdown(500, 0, 500, 50, 10.0, 36_700.0, 30_000.0, 10.0, 6_000.0, 20.0)
    note = crowded.outside_server_note() or ""
    assert note.startswith("m @ 500 users: Triton's own time per request averaged 36.7 ms, the client measured")
    assert "of the latency was spent outside the server" in note and note in crowded.notes()
    busy = make_result("m", 16, 7)  # client mean ≈ 32 ms, Triton 30 ms: the server's own time
    busy.server = ServerBreakdown(500, 0, 500, 50, 10.0, 30_000.0, 20_000.0, 10.0, 9_000.0, 20.0)
    assert busy.outside_server_note() is None
    quick = make_result("m", 1, 8)  # 2 ms at the client, 0.9 ms inside: over half, but under 5 ms
    quick.server = ServerBreakdown(500, 0, 500, 500, 1.0, 900.0, 300.0, 10.0, 500.0, 20.0)
    assert quick.outside_server_note() is None
    crowded.mode = "open"  # an open loop's client waits are the send-lag note's
    assert crowded.outside_server_note() is None


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d.pop("model"), "(no 'model' field)"),
        (lambda d: d.update(results={}), "('results' is {}, not a list of measured steps)"),
        (lambda d: d["results"][0].update(requests="many"), "('requests' is 'many', not a number)"),
        (lambda d: d["results"][0]["latency"].update(p99_ms=[1]), "('p99_ms' is [1], not a number)"),
        (lambda d: d["results"][0].pop("latency"), "(no 'latency' field)"),
    ],
)
def test_a_results_file_of_another_shape_is_one_line_naming_what_is_wrong(
    tmp_path: Path, change: object, said: str
) -> None:
    """A hand-edited or foreign load-*.json made `report` fail with KeyError/TypeError tracebacks, or (results {})
    write an empty report and exit 0."""
    path = LoadRun("mlp", [make_result("mlp", 4, 0)]).save(tmp_path)
    assert LoadRun.load(path).results[0].requests == 500  # as saved: read back
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))
    with pytest.raises(QuantserveError) as caught:
        render(tmp_path)
    assert str(caught.value) == f"{path}: not a quantserve load results file {said}"


def test_an_accuracy_file_of_another_shape_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "accuracy.json").write_text(json.dumps({"reference": "m", "samples": 3}))
    with pytest.raises(QuantserveError, match=r"accuracy.json: not a quantserve accuracy file \(no 'variants' field\)"):
        render(tmp_path)
