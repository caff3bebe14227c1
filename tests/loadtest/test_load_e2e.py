"""End to end against a real tritonserver: real concurrency, headless load outputs, drift budget, browser view.

One server per module (see conftest.py) serves FP32, INT8 (real calibration) and damaged MLPs.
Loads are short (3–5 s); nothing here asserts on speed, only on what Triton and the files say.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport
from loadtest.harness import run_load, run_pattern
from loadtest.load_pattern import ClosedLoop, OpenLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from optimizer.drift_budget import DriftBudget
from quantserve.cli import main

# serial: it judges rates, latencies, time or memory, so it runs alone after the parallel part (make test)
pytestmark = [pytest.mark.e2e, pytest.mark.serial]


def test_sixteen_users_keep_triton_batching(served_models, tmp_path: Path) -> None:
    """The proof of real concurrency, from Triton's own counters: average batch > 1.5 at 16 users."""
    result = run_load(
        served_models.url,
        served_models.fp32,
        served_models.load_data,
        users=16,
        duration_s=5,
        out_dir=tmp_path,
        metrics_url=served_models.metrics_url,
        server_pid=served_models.pid,
    )
    assert result.failed_requests == 0 and result.requests > 100
    assert result.server is not None
    assert result.avg_batch_size > 1.5, f"Triton batched {result.avg_batch_size:.2f} requests per execution"
    # The server counted the same window the client measured (give or take the requests in flight at its edges).
    assert abs(result.server.requests_succeeded - result.requests) <= max(32, 0.05 * result.requests)
    assert result.utilization is not None and result.utilization.samples > 0


@pytest.fixture(scope="module")
def cli_results(served_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`quantserve loadtest` with a 2-step sweep, then `quantserve evaluate` (FP32 vs INT8) into one folder."""
    out = tmp_path_factory.mktemp("cli-results")
    common = ["--url", served_models.url, "--out", str(out)]
    load = ["--model", served_models.fp32, "--data", str(served_models.load_data), "--sweep", "1,8"]
    code = main(["loadtest", *common, *load, "--duration", "4s", "--metrics-url", served_models.metrics_url])
    assert code == 0
    models = f"{served_models.fp32},{served_models.int8}"
    heldout = ["--data", str(served_models.heldout)]
    code = main(["evaluate", *common, *heldout, "--models", models, "--reference", served_models.fp32])
    assert code == 0 or pytest.fail("evaluate without a budget must pass")
    return out


def test_headless_load_writes_json_and_csv(cli_results: Path, served_models) -> None:
    run = LoadRun.load(cli_results / f"load-{served_models.fp32}.json")
    assert [r.users for r in run.results] == [1, 8]
    for result in run.results:
        assert result.failed_requests == 0 and result.requests > 0
        assert result.latency.p50_ms <= result.latency.p99_ms
        assert result.server is not None and result.server.requests_failed == 0
        with open(cli_results / f"{result.locust_csv_prefix}_stats.csv", newline="") as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
        assert rows[served_models.fp32]["Type"] == "grpc"
        assert int(rows[served_models.fp32]["Failure Count"]) == 0
        # Locust's own CSV covers the same window (it is rewritten every 0.2 s, so allow one tick).
        assert abs(int(rows[served_models.fp32]["Request Count"]) - result.requests) <= 0.1 * result.requests
    assert run.results[1].avg_batch_size > run.results[0].avg_batch_size


def test_report_is_self_contained(cli_results: Path) -> None:
    html = (cli_results / "report.html").read_text()
    md = (cli_results / "report.md").read_text()
    assert html.count("<svg") == 5 + 2 * 2 and "Accuracy drift" in html  # and requests/s, latency over time per step
    assert not re.search(r"(src|href)=|https?://", html)
    assert "| step |" in md and "top-1 agree" in md


def _chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags += [
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=90, check=False)


def test_report_renders_in_headless_chromium(cli_results: Path, chromium: str, tmp_path: Path) -> None:
    from PIL import Image

    from loadtest.svg_plots import PALETTE

    url = (cli_results / "report.html").as_uri()
    dom = _chromium(chromium, tmp_path, "--dump-dom", url).stdout
    assert dom.count("<svg") == 5 + 2 * 2, "the browser's DOM holds every chart (two over time per step)"
    assert dom.count("<path") >= 4 and dom.count("<circle") >= 6
    shot = tmp_path / "report.png"
    _chromium(chromium, tmp_path, "--window-size=1320,1400", f"--screenshot={shot}", url)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 50, "the screenshot is blank"
    for color in PALETTE[:2]:  # the first two series' colours were painted (lines, markers, bars)
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=1) < 30).sum() > 200, f"no {color} plot pixels in the screenshot"


SERVED_METRIC = """
def accuracy(outputs, labels):
    (scores,) = outputs.values()
    return float((scores.argmax(axis=1) == labels).mean())
"""


def test_drift_budget_trips_on_a_damaged_model_and_passes_int8(
    served_models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "served_task_metric.py").write_text(SERVED_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["evaluate", "--url", served_models.url, "--data", str(served_models.heldout), "--reference"]
    args += [served_models.fp32, "--max-accuracy-drop", "1.0"]
    good = main([*args, "--models", served_models.int8, "--out", str(tmp_path / "good")])
    args += ["--metric", "served_task_metric:accuracy"]  # the user's task metric, on the served outputs
    bad = main([*args, "--models", f"{served_models.int8},{served_models.damaged}", "--out", str(tmp_path / "bad")])
    assert good == 0
    assert bad == 1
    report = AccuracyReport.load(tmp_path / "bad" / "accuracy.json")
    assert report.over_budget == [served_models.damaged]
    scores = {v.model: v for v in report.variants}
    assert scores[served_models.fp32].accuracy > 0.9  # labels are the FP32 model's own with 5 % noise
    assert scores[served_models.int8].top1_agreement > 0.97
    assert scores[served_models.damaged].top1_agreement < 0.9
    assert all(v.version.isdigit() for v in scores.values()), "the version that answered is recorded"
    metric = {model: v.user_metric for model, v in scores.items()}
    assert metric[served_models.fp32]["value"] == pytest.approx(scores[served_models.fp32].accuracy)
    assert metric[served_models.damaged]["relative_drop"] > 0.01
    assert (
        scores[served_models.damaged].violations[-1].startswith("metric 'served_task_metric:accuracy': relative drop")
    )
    assert json.loads((tmp_path / "bad" / "accuracy.json").read_text())["max_accuracy_drop"] == 1.0


def test_open_loop_rate_sweep_holds_the_offered_rates(served_models, tmp_path: Path) -> None:
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    args = ["--rate", "40,120", "--arrivals", "constant", "--duration", "3s", "--out", str(tmp_path)]
    assert main(["loadtest", *target, *args, "--metrics-url", served_models.metrics_url]) == 0
    run = LoadRun.load(tmp_path / f"load-{served_models.fp32}-open.json")
    assert [r.rate_rps for r in run.results] == [40.0, 120.0]
    for result in run.results:
        assert result.mode == "open" and result.failed_requests == 0
        assert 0.8 * result.rate_rps <= result.throughput_rps <= 1.2 * result.rate_rps
        assert result.send_lag_p50_ms is not None and result.send_lag_p99_ms is not None
        assert 0.0 <= result.send_lag_p50_ms <= result.send_lag_p99_ms <= result.latency.max_ms


def test_an_open_loop_its_client_cannot_keep_says_it_sent_late(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One in-flight slot at 1000 req/s: requests wait in the client, their latency includes it, and the run
    says so (and why) instead of blaming the server; the arrivals never sent fail it (exit 1)."""
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    args = ["--rate", "1000", "--max-in-flight", "1", "--duration", "3s", "--out", str(tmp_path)]
    assert main(["loadtest", *target, *args, "--metrics-url", served_models.metrics_url]) == 1
    printed = capsys.readouterr()
    assert "arrivals never sent" in printed.err
    (result,) = LoadRun.load(tmp_path / f"load-{served_models.fp32}-open.json").results
    assert result.send_lag_p99_ms is not None and result.send_lag_p99_ms > 100, result.send_lag_p99_ms
    assert result.throughput_rps < 0.8 * 1000, "one slot cannot carry 1000 req/s of round trips"
    note = result.send_lag_note()
    assert result.max_in_flight == 1 and note is not None and f"note: {note}" in printed.out
    assert result.peak_in_flight is not None and result.peak_in_flight > 1, "arrivals queued behind the one slot"
    assert "all 1 in-flight slots were taken" in note or "fell behind its schedule" in note
    assert f"- Sent late: {note}" in (tmp_path / "report.md").read_text()


def test_an_open_loop_above_capacity_counts_the_arrivals_it_never_sent(served_models, tmp_path: Path) -> None:
    """1000 req/s through one in-flight slot: most arrivals still wait in the client at the stop. They are counted
    (never sent), and every arrival of the window is accounted for."""
    pattern = OpenLoop(rate=1000.0)
    settings = LoadSettings(served_models.url, served_models.fp32, served_models.load_data, pattern, 3.0)
    settings.max_in_flight = 1
    (result,) = run_pattern(settings, tmp_path).results
    arrivals = 1000 * result.window_s
    assert result.unsent > 0.2 * arrivals, f"{result.unsent} of ~{arrivals:.0f} arrivals never sent"
    assert result.offered_requests is not None and 0.8 * arrivals <= result.offered_requests <= 1.2 * arrivals
    assert result.offered_requests >= result.requests + result.unsent
    assert result.unsent_note() in result.notes()


def test_a_recorded_trace_replays_its_bursts_across_worker_processes(served_models, tmp_path: Path) -> None:
    """perf_analyzer's intervals file, 10 then 60 arrivals a second, dealt to two Locust worker processes."""
    gaps_us = [100_000] * 10 + [1_000_000 // 60] * 60  # one quiet second, one busy second: a 2 s pass
    trace = tmp_path / "bursts.txt"
    trace.write_text("\n".join(str(g) for g in gaps_us) + "\n")
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    args = ["--trace", str(trace), "--duration", "4s", "--workers", "2", "--out", str(tmp_path / "out")]
    assert main(["loadtest", *target, *args, "--metrics-url", served_models.metrics_url]) == 0
    (result,) = LoadRun.load(tmp_path / "out" / f"load-{served_models.fp32}-open.json").results
    assert result.mode == "open" and result.arrivals == "trace" and result.failed_requests == 0
    assert result.send_lag_p99_ms is not None and result.send_lag_p99_ms >= 0.0
    assert result.trace is not None and result.trace["peak_rate_rps_1s"] == pytest.approx(60.0, abs=1)
    assert result.rate_rps == pytest.approx(35.0, rel=0.01)
    assert 0.75 * result.rate_rps <= result.throughput_rps <= 1.25 * result.rate_rps
    seconds = [s.ok for s in result.timeline if s.width_s == 1.0]
    assert max(seconds) >= 2 * min(seconds), f"the replay kept the trace's bursts: {seconds} requests a second"
    shares = [len(np.load(p)) for p in (tmp_path / "out" / "raw" / "mlp_fp32-trace-bursts").glob("latencies-*.npy")]
    assert len(shares) == 2 and min(shares) >= 0.8 * max(shares), f"arrivals dealt in turn: {shares}"
    assert (
        "- Trace: mlp_fp32 replaying bursts.txt (35 req/s mean): 70 arrivals a 2 s pass"
        in (tmp_path / "out" / "report.md").read_text()
    )


def test_a_trace_of_mixed_request_sizes_sends_each_its_samples(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Clients sending 1, 4 and 16 samples a request, as recorded: inferences count each request's own samples."""
    times = np.arange(0.0, 3.0, 1 / 30)
    sizes = np.resize([1, 4, 16], len(times))  # mean 7 samples a request
    trace = tmp_path / "mixed.csv"
    trace.write_text("time,batch_size\n" + "".join(f"{t:.4f},{n}\n" for t, n in zip(times, sizes, strict=True)))
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    assert main(["loadtest", *target, "--trace", str(trace), "--out", str(tmp_path / "out")]) == 0
    (result,) = LoadRun.load(tmp_path / "out" / f"load-{served_models.fp32}-open.json").results
    assert result.failed_requests == 0 and result.trace is not None and result.trace["max_request_samples"] == 16
    assert result.inferences_per_s / result.throughput_rps == pytest.approx(7.0, rel=0.1)
    recorded = np.concatenate([np.load(p) for p in (tmp_path / "out" / "raw").glob("*/latencies-*.npy")])
    assert set(recorded[:, 5].astype(int)) == {1, 4, 16}
    assert "requests of 3 sizes, mean 7 samples, up to 16" in (tmp_path / "out" / "report.md").read_text()

    trace.write_text("time,batch_size\n0,1\n0.5,64\n")  # the model takes at most 32 a request
    assert main(["loadtest", *target, "--trace", str(trace), "--out", str(tmp_path / "too-big")]) == 2
    error = capsys.readouterr().err.strip()
    assert "requests of 64 samples, more than model 'mlp_fp32' takes (max_batch_size 32)" in error
    assert error.count("\n") == 0


def test_locust_master_with_local_workers(served_models, tmp_path: Path) -> None:
    result = run_load(
        served_models.url,
        served_models.fp32,
        served_models.load_data,
        users=8,
        duration_s=4,
        out_dir=tmp_path,
        metrics_url=served_models.metrics_url,
        workers=2,
    )
    assert result.failed_requests == 0 and result.requests > 0 and result.workers == 2
    assert result.lost_workers == [], "workers that exit with the master are not lost"
    recorded = list((tmp_path / "raw" / "mlp_fp32-u8").glob("latencies-*.npy"))
    assert len(recorded) == 2, "each worker process sent and recorded its own requests"


def test_a_worker_killed_mid_run_is_named_in_the_result(served_models, tmp_path: Path) -> None:
    """The master carries on without a SIGKILLed worker and exits 0; the result still says the worker was lost."""
    settings = LoadSettings(served_models.url, served_models.fp32, served_models.load_data, ClosedLoop(4), 6.0)
    settings.workers = 2
    killer = threading.Thread(target=_kill_a_worker, args=(tmp_path / "locust" / "mlp_fp32-u4_stats.csv",))
    killer.start()
    (result,) = run_pattern(settings, tmp_path).results
    killer.join()
    (lost,) = result.lost_workers
    assert re.fullmatch(r"worker[01] killed by SIGKILL", lost) and result.has_failures
    assert f"Locust {lost} before the end" in (result.lost_workers_note() or "")
    # the lost worker's users never warm up: the window opened once Locust marked it missing (3 s without a
    # heartbeat), not at the warm-up cap (the 30 s client deadline and a margin), which held it closed before
    assert result.warm_up is not None and result.warm_up["warm_up_s"] < 15.0, result.warm_up


def _kill_a_worker(stats_csv: Path) -> None:
    """SIGKILL one Locust worker a second after the master starts writing its stats (the load is running)."""
    import psutil

    deadline = time.monotonic() + 60
    while not stats_csv.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)

    def cmdline(process: psutil.Process) -> list[str]:
        try:  # an earlier test's child not yet reaped is a zombie: psutil refuses its command line
            return process.cmdline()
        except psutil.Error:
            return []

    workers = [p for p in psutil.Process().children(recursive=True) if "--worker" in cmdline(p)]
    workers[0].kill()


def test_unknown_model_is_one_clear_line(served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = ["--url", served_models.url, "--model", "nope", "--data", str(served_models.load_data)]
    code = main(["loadtest", *target, "--out", str(tmp_path), "--duration", "1s"])
    assert code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_data_that_does_not_fit_the_model_is_one_clear_line(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((4, 7), np.float32))
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(wrong)]
    assert main(["loadtest", *target, "--out", str(tmp_path / "out"), "--duration", "1s"]) == 2
    err = capsys.readouterr().err
    assert "input 'x' has shape (4, 7)" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "out" / "load-mlp_fp32.json").exists()


def test_inputs_and_outputs_with_one_value_per_sample_load_and_evaluate(served_models, tmp_path: Path) -> None:
    """`gain` [batch] in, `label` [batch] out: Triton takes and gives them as [batch, 1]; the data has [batch]."""
    from loadtest.served_answers import served_outputs
    from quantserve.data import TensorData, load_npz

    data = load_npz(served_models.load_data)
    gain = np.random.default_rng(7).uniform(0.5, 2.0, size=len(data)).astype(np.float32)
    path = TensorData({"x": data.arrays["x"], "gain": gain}).save(tmp_path / "gain.npz")
    result = run_load(served_models.url, served_models.gain, path, users=2, duration_s=2, out_dir=tmp_path)
    assert result.failed_requests == 0 and result.requests > 0
    got = served_outputs(served_models.url, served_models.gain, TensorData({"x": data.arrays["x"], "gain": gain}))
    want = models.reference_logits(data.arrays["x"], models.mlp_weights()) * gain[:, None]
    np.testing.assert_allclose(got["logits"], want, rtol=1e-4, atol=1e-4)
    assert got["label"].shape == (len(data),) and np.array_equal(got["label"], want.argmax(axis=1))


def test_embedding_task_scores_by_cosine_even_with_labels(served_models) -> None:
    from loadtest.evaluator import evaluate_accuracy

    report = evaluate_accuracy(
        served_models.url, [served_models.int8], served_models.fp32, served_models.heldout, task="embedding"
    )
    int8 = next(v for v in report.variants if v.model == served_models.int8)
    assert not report.has_labels and int8.accuracy is None
    assert int8.cosine_mean is not None and 0.9 < int8.cosine_mean <= 1.0 + 1e-6
    assert int8.cosine_min is not None and int8.cosine_min <= int8.cosine_mean


def test_a_spike_of_users_inside_one_window(served_models, tmp_path: Path) -> None:
    """`--stages 1:2s,6:2s,1:2s`: Locust's LoadTestShape drives the users; the raw records show the spike."""
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    assert main(["loadtest", *target, "--stages", "1:2s,6:2s,1:2s", "--out", str(tmp_path)]) == 0
    run = LoadRun.load(tmp_path / f"load-{served_models.fp32}-staged.json")
    (result,) = run.results
    assert result.mode == "staged" and result.users == 6 and result.failed_requests == 0
    assert 4.0 <= result.window_s <= 7.0 and len(result.timeline) >= 4
    records = np.concatenate([np.load(p) for p in (tmp_path / "raw").glob("*/latencies-*.npy")])
    ends, starts = records[:, 0], records[:, 0] - records[:, 1] / 1000.0
    first = starts.min()

    def most_in_flight(t0: float, t1: float) -> int:
        moments = starts[(starts >= first + t0) & (starts < first + t1)]
        return max((int(((starts <= t) & (ends > t)).sum()) for t in moments), default=0)

    assert most_in_flight(0.0, 1.5) == 1, "one user before the spike"
    assert most_in_flight(2.5, 3.5) >= 4, "the spike's users were in flight together"


def test_evaluate_data_that_does_not_fit_the_model_is_one_line_before_any_request(
    served_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`infer` and `loadtest` checked the data against the served model's inputs; `evaluate` sent it and came back
    with Triton's long message."""
    arrays = dict(np.load(served_models.heldout))
    name = next(k for k in arrays if k != "labels")
    bad = tmp_path / "float64.npz"
    np.savez(bad, **{**arrays, name: arrays[name].astype(np.float64)})
    args = ["evaluate", "--url", served_models.url, "--models", served_models.int8, "--reference", served_models.fp32]
    assert main([*args, "--data", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: {bad}: input '{name}' ") and err.count("\n") == 1, err


def test_an_open_loop_window_without_an_arrival_is_a_result_not_a_traceback(served_models, tmp_path: Path) -> None:
    """`--rate 0.5 --duration 2s` (under one expected arrival is refused up front): at most one arrival falls in the
    window; with none, the summary's in-flight peak took the maximum of an empty array (a ValueError traceback)."""
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    args = ["--rate", "0.5", "--duration", "2s", "--out", str(tmp_path)]
    main(["loadtest", *target, *args, "--metrics-url", served_models.metrics_url])
    (result,) = LoadRun.load(tmp_path / f"load-{served_models.fp32}-open.json").results
    assert result.failed_requests == 0 and result.requests <= 1 and result.peak_in_flight in (None, 1)


def test_a_trace_of_a_burst_plays_it_once_by_default(served_models, tmp_path: Path) -> None:
    """A burst at a trace's start and one late arrival: a pass of 1.025 s, run for 2 s. Rounded up, the run had
    replayed the burst again from 1.025 s (81 requests for a file of 41, session 39's probe: 6001 for 3001); the
    pass is now padded to the run's whole seconds, every arrival sent once."""
    trace = tmp_path / "burst.csv"
    trace.write_text("timestamp\n" + "0.0\n" * 40 + "1.0\n")
    target = ["--url", served_models.url, "--model", served_models.fp32, "--data", str(served_models.load_data)]
    assert main(["loadtest", *target, "--trace", str(trace), "--out", str(tmp_path / "out")]) == 0
    (result,) = LoadRun.load(tmp_path / "out" / f"load-{served_models.fp32}-open.json").results
    assert result.requests == 41 and result.failed_requests == 0
    assert result.trace is not None and result.trace["idle_after_pass_s"] == pytest.approx(2 - 1.025)


def test_an_argmax_output_is_scored_as_the_class_ids_it_is(served_models) -> None:
    """`label` [batch] int64, a classifier's ArgMax in its graph, scored against the labels: its accuracy, and its
    top-1 agreement as the share of ids unchanged. It was refused as "not class scores" (session 50)."""
    from loadtest.evaluator import evaluate_accuracy
    from quantserve.data import TensorData, load_npz

    data = load_npz(served_models.heldout)
    gain = np.ones(len(data), np.float32)
    rows = TensorData({"x": data.arrays["x"], "gain": gain}, labels=data.labels)
    report = evaluate_accuracy(
        served_models.url, [served_models.gain], served_models.gain, rows, output="label", budget=DriftBudget()
    )
    (variant,) = report.variants
    want = models.reference_logits(data.arrays["x"], models.mlp_weights()).argmax(axis=1)
    assert variant.accuracy == pytest.approx(float(np.mean(want == data.labels)))
    assert variant.top1_agreement == 1.0 and variant.cosine_mean is None and variant.f1_macro is not None
