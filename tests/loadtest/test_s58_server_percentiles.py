"""Triton's own request p50/p99, from its latency summary, set beside the client's (session 58).

A probe's open loop read p99 160.55 ms at the client; Triton's `nv_inference_request_summary_us{quantile="0.99"}`
read 94000 µs: the rest was the client's send lag. The report had no way to say so: `quantserve serve` did not export
the summary and the loadtest read only Triton's cumulative counters (means). The summary is a sliding window of the
last 48-60 s of every client's requests, so the line says that, and where the step's window was shorter or longer.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult
from loadtest.triton_metrics import breakdown, parse_metrics, request_quantiles

_START = """nv_inference_request_success{model="seq_tuned",version="1"} 100
nv_inference_count{model="seq_tuned",version="1"} 100
nv_inference_exec_count{model="seq_tuned",version="1"} 20
nv_inference_request_duration_us{model="seq_tuned",version="1"} 1000000
"""
# the probe's scrape at the end, with the summary lines (`--metrics-config=summary_latencies=true`)
_END = """nv_inference_request_success{model="seq_tuned",version="1"} 6100
nv_inference_count{model="seq_tuned",version="1"} 6100
nv_inference_exec_count{model="seq_tuned",version="1"} 620
nv_inference_request_duration_us{model="seq_tuned",version="1"} 241000000
# HELP nv_inference_request_summary_us Summary of inference request duration in microseconds
# TYPE nv_inference_request_summary_us summary
nv_inference_request_summary_us_count{model="seq_tuned",version="1"} 6100
nv_inference_request_summary_us_sum{model="seq_tuned",version="1"} 241000000
nv_inference_request_summary_us{model="seq_tuned",version="1",quantile="0.5"} 31200
nv_inference_request_summary_us{model="seq_tuned",version="1",quantile="0.9"} 70000
nv_inference_request_summary_us{model="seq_tuned",version="1",quantile="0.95"} 81000
nv_inference_request_summary_us{model="seq_tuned",version="1",quantile="0.99"} 94000
nv_inference_queue_summary_us{model="seq_tuned",version="1",quantile="0.99"} 52000
"""
_PLAIN_END = "\n".join(line for line in _END.splitlines() if "summary" not in line)


def _step(end: str = _END, window_s: float = 50.0, version: str = "") -> LoadResult:
    """The probe's open-loop step: p50 40.1 ms, p99 160.55 ms at the client, send lag p99 70.2 ms."""
    latency = LatencySummary(6000, 55.0, 40.1, 120.0, 140.0, 160.55, 5.0, 210.0)
    result = LoadResult("seq_tuned", "127.0.0.1:19671", "open", 1, window_s, 6000, 0, 120.0, 120.0, latency)
    result.rate_rps, result.arrivals, result.send_lag_p99_ms = 120.0, "poisson", 70.2
    result.server = breakdown(parse_metrics(_START), parse_metrics(end), "seq_tuned", version)
    return result


def _percentiles_note(result: LoadResult) -> str:
    (note,) = [n for n in result.notes() if "Triton's own request latency" in n]
    return note


def test_the_summary_quantiles_are_read_per_version() -> None:
    scrape = parse_metrics(_END)
    assert request_quantiles(scrape, "seq_tuned") == {"0.5": 31200.0, "0.9": 70000.0, "0.95": 81000.0, "0.99": 94000.0}
    assert scrape["seq_tuned"]["nv_inference_request_success"] == 6100  # the counters as before
    server = _step().server
    assert server is not None and (server.request_p50_us, server.request_p99_us) == (31200.0, 94000.0)
    addressed = _step(version="1").server  # --model-version: the version's own summary
    assert addressed is not None and addressed.request_p99_us == 94000.0


def test_two_versions_quantiles_are_not_merged_and_nan_is_no_figure() -> None:
    second = _END.replace('version="1"', 'version="2"')
    both = parse_metrics(_END + second)
    assert request_quantiles(both, "seq_tuned") == {}  # no one figure of two versions' quantiles
    assert request_quantiles(both, "seq_tuned", "2")["0.99"] == 94000.0
    # Triton's words for a window with no request (none in the last 60 s)
    idle = parse_metrics(_END.replace("} 94000", "} Nan").replace("} 31200", "} Nan"))
    assert "0.99" not in request_quantiles(idle, "seq_tuned")
    server = breakdown(parse_metrics(_START), idle, "seq_tuned")
    assert server.request_p99_us is None and server.request_p50_us is None


def test_the_note_sets_tritons_percentiles_beside_the_clients() -> None:
    note = _percentiles_note(_step())
    assert note.startswith(
        "seq_tuned @ 120 req/s poisson: Triton's own request latency p50 31.2 ms, p99 94.0 ms; "
        "the client's p50 40.1 ms, p99 160.6 ms; the client's p99 is 66.6 ms above Triton's: time spent outside "
        "Triton's request handling, the client's send lag (p99 70.2 ms), the load generator's CPU, serialization, "
        "gRPC and the network."
    )
    assert "quantiles over its last 48–60 s before the window's end, of every client's requests to the model" in note
    assert "this window ran" not in note  # 50 s: inside Triton's window
    assert ("Server percentiles", note) in step_lines([LoadRun("seq_tuned", [_step()])])


def test_the_note_says_when_the_windows_do_not_match() -> None:
    assert "(this window ran 10.0 s: they take in the requests of a warm-up or step before it)" in (
        _percentiles_note(_step(window_s=10.0))
    )
    assert "(this window ran 300.0 s: they cover its end only)" in _percentiles_note(_step(window_s=300.0))
    slower = _END.replace("} 94000", "} 190000")  # another client's slower requests in Triton's window
    assert "Triton's p99 is 29.4 ms above the client's: its window held slower requests" in (
        _percentiles_note(_step(slower))
    )


def test_nothing_new_without_the_summary(tmp_path: Path) -> None:
    result = _step(_PLAIN_END)
    assert result.server is not None and result.server.request_p99_us is None
    assert result.server_percentiles_note() is None
    assert not [n for n in result.notes() if "Triton's own request latency" in n]
    result.server = None  # no metrics at all
    assert result.server_percentiles_note() is None
    LoadRun("seq_tuned", [_step()]).save(tmp_path)  # the figures survive the saved file; an older file has none
    (loaded,) = LoadRun.load(next(tmp_path.glob("load-seq_tuned*.json"))).results
    assert loaded.server is not None and loaded.server.request_p99_us == 94000.0
