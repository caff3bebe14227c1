"""Parsing Triton's Prometheus text (a real scrape from tritonserver 2.51, kept in assets/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.recording_files import Window
from loadtest.step_result import _server_restarted
from loadtest.triton_metrics import breakdown, counters_went_back, metrics_endpoint, parse_metrics, scrape
from quantserve.errors import QuantserveError

SCRAPE = Path(__file__).parent / "assets" / "triton_metrics.txt"


def test_parse_real_scrape() -> None:
    models = parse_metrics(SCRAPE.read_text())
    assert set(models) == {"lin", "slow"}
    assert models["lin"]["nv_inference_count"] == 96696
    assert models["lin"]["nv_inference_exec_count"] == 40498
    assert models["slow"]["nv_inference_request_success"] == 1553


def test_versions_are_summed_and_other_metrics_ignored() -> None:
    text = "\n".join(
        [
            "# HELP nv_inference_count Number of inferences",
            'nv_inference_count{model="m",version="1"} 10',
            'nv_inference_count{model="m",version="2"} 5',
            'nv_gpu_utilization{gpu_uuid="GPU-1"} 0.5',
            "nv_cpu_utilization 0.25",
        ]
    )
    models = parse_metrics(text)
    assert models == {"m": {**models["m"], "nv_inference_count": 15.0}}


def test_breakdown_is_a_delta_over_the_window() -> None:
    before = parse_metrics(
        'nv_inference_count{model="m",version="1"} 100\nnv_inference_exec_count{model="m",version="1"} 100\n'
        'nv_inference_request_success{model="m",version="1"} 100\n'
        'nv_inference_queue_duration_us{model="m",version="1"} 1000'
    )
    after = parse_metrics(
        'nv_inference_count{model="m",version="1"} 500\nnv_inference_exec_count{model="m",version="1"} 200\n'
        'nv_inference_request_success{model="m",version="1"} 500\n'
        'nv_inference_queue_duration_us{model="m",version="1"} 9000'
    )
    b = breakdown(before, after, "m")
    assert b.requests_succeeded == 400 and b.executions == 100
    assert b.avg_batch_size == 4.0
    assert b.avg_queue_us == 20.0


def test_a_server_replaced_in_the_window_is_told_by_its_pid_or_its_counters() -> None:
    """A restarted tritonserver's counters start again at zero: their delta covers only the time since."""
    served = parse_metrics('nv_inference_request_success{model="m",version="1"} 900')
    restarted = parse_metrics('nv_inference_request_success{model="m",version="1"} 40')
    later = parse_metrics('nv_inference_request_success{model="m",version="1"} 2000')
    assert counters_went_back(served, restarted, "m") and counters_went_back(served, {}, "m")
    assert not counters_went_back(served, later, "m") and not counters_went_back({}, later, "m")
    same = Window(0.0, 10.0, served, later)
    assert _server_restarted(100, 100, same, "m") is None and _server_restarted(None, None, same, "m") is None
    assert _server_restarted(100, 250, same, "m") == "pid 100 listened on its port at the start, pid 250 at the end"
    assert "no process at the end" in (_server_restarted(100, None, same, "m") or "")
    # the same pid (or none seen) but counters lower at the end: a restart the pid did not show
    assert "counters were lower" in (_server_restarted(None, None, Window(0.0, 10.0, served, restarted), "m") or "")


def test_breakdown_of_an_idle_model_is_zero_not_an_error() -> None:
    b = breakdown({}, {}, "absent")
    assert b.avg_batch_size == 0.0 and b.requests_succeeded == 0


def test_endpoint_forms() -> None:
    assert metrics_endpoint("127.0.0.1:8002") == "http://127.0.0.1:8002/metrics"
    assert metrics_endpoint("http://h:1/metrics") == "http://h:1/metrics"


def test_unreachable_endpoint_is_one_clear_error(free_port_factory) -> None:
    with pytest.raises(QuantserveError, match="metrics endpoint not reachable"):
        scrape(f"127.0.0.1:{free_port_factory()}", timeout_s=2)
