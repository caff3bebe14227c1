"""Two or more load runs of one precision in one folder are shown side by side: an A/B table of figures and ratios.

Issue 11: "report can't A/B two configs of one precision". FP32 deployed naive and as `tune` left it, load-tested
into one folder, got no comparison at all: the verdict pairs INT8 with FP32 only. Results here are written and read
by the code's own `LoadRun.save`/`load`, with chosen figures; no server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.cli import main

MACHINE = {"client_host": "loadbox", "client_cpu": "AMD EPYC 9B14", "client_cores": 2}
AB_HEADER = (
    "| step | run | served (versions; config) | req/s | p50 ms | p99 ms | failed | avg batch | req/s × | p99 × |"
)


def _step(model: str, users: int, rps: float, p99: float, failed: int = 0) -> LoadResult:
    latency = LatencySummary(int(rps * 10), 2.0, p99 / 2, 3.5, 4.0, p99, 1.0, p99 + 1)
    return LoadResult(model, "127.0.0.1:8001", "closed", users, 10.0, int(rps * 10), failed, rps, rps, latency)


def _save(folder: Path, model: str, steps: list[LoadResult], started: str, **identity: object) -> None:
    record = RunIdentity(started, ["1"], "sha256:src", "load.npz", "sha256:data", **MACHINE)  # type: ignore[arg-type]
    for name, value in identity.items():
        setattr(record, name, value)
    precision = "int8" if "int8" in model else "fp32"
    LoadRun(model, steps, precision=precision, identity=record).save(folder)


def _naive_and_tuned(folder: Path, failed: int = 0, **tuned_identity: object) -> None:
    """FP32 deployed naive (load-tested first, at 1 and 4 users) and tuned (later, at 4 and 8 users)."""
    naive = [_step("mlp_fp32", 1, 400.0, 3.0), _step("mlp_fp32", 4, 1000.0, 8.0)]
    _save(folder, "mlp_fp32", naive, "2026-12-01T04:20:05Z", config="no batching, 1 instance")
    tuned = [_step("mlp_fp32_tuned", 4, 2500.0, 4.0, failed), _step("mlp_fp32_tuned", 8, 2600.0, 9.0)]
    config = "max batch 32, queue 500 µs, 2 instances"
    _save(folder, "mlp_fp32_tuned", tuned, "2026-12-01T04:21:00Z", versions=["2"], config=config, **tuned_identity)


def test_two_fp32_runs_get_an_ab_table_at_their_common_step(tmp_path: Path) -> None:
    _naive_and_tuned(tmp_path, failed=3)
    md_path, html_path = render(tmp_path)
    md = md_path.read_text()
    assert "## A/B: load runs of one precision side by side (figures and ratios only, nothing judged)" in md
    assert "### FP32: ratios to mlp_fp32, load-tested first" in md
    table = md.split(AB_HEADER, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert table == [
        "| 4 users | mlp_fp32 | 1; no batching, 1 instance | 1000.0 | 4.00 | 8.00 | 0 | – | base | base |",
        "| 4 users | mlp_fp32_tuned | 2; max batch 32, queue 500 µs, 2 instances | 2500.0 | 2.00 | 4.00 | 3 | – "
        "| 2.50× | 0.50× |",
    ]
    assert "- mlp_fp32: 1 user left out of the A/B table (not measured in every run)" in md
    assert "- mlp_fp32_tuned: 8 users left out of the A/B table (not measured in every run)" in md
    html = html_path.read_text()
    assert "<h3>FP32: ratios to mlp_fp32, load-tested first</h3>" in html
    assert "<td>2.50×</td><td>0.50×</td>" in html
    ab = md.split("## A/B", 1)[1]
    assert "PASS" not in ab and "FAIL" not in ab  # figures and ratios only; the verdict fails on the failed requests


def test_the_run_load_tested_first_is_the_base_whatever_the_file_order(tmp_path: Path) -> None:
    _save(tmp_path, "a_fp32", [_step("a_fp32", 4, 2000.0, 4.0)], "2026-12-01T05:00:00Z")
    _save(tmp_path, "b_fp32", [_step("b_fp32", 4, 1000.0, 8.0)], "2026-12-01T04:00:00Z")
    table = load_results(tmp_path).ab.tables[0]
    assert [run.model for run in table.runs] == ["b_fp32", "a_fp32"]
    assert table.rows()[1][-2:] == ["2.00×", "0.50×"]


def test_the_report_command_prints_the_ratios_before_the_verdict_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _naive_and_tuned(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:] == [
        "A/B FP32 mlp_fp32_tuned at 4 users: 2.50× req/s (2500.0 vs 1000.0), p99 0.50× (4.00 vs 8.00 ms), 0 vs 0 "
        "failed, of mlp_fp32",
        "A/B: mlp_fp32: 1 user left out of the A/B table (not measured in every run)",
        "A/B: mlp_fp32_tuned: 8 users left out of the A/B table (not measured in every run)",
        "No verdict: load-test an FP32 and an INT8 variant, or evaluate them, to compare.",
    ]


def test_runs_on_different_data_are_not_compared_and_the_reason_is_said(tmp_path: Path) -> None:
    _naive_and_tuned(tmp_path, data="other.npz", data_sha256="sha256:0123456789abcdef")
    inputs = load_results(tmp_path)
    assert inputs.ab.tables == []
    assert inputs.ab.notes == [
        "mlp_fp32_tuned and mlp_fp32 were load-tested on different data (other.npz sha256:0123456789ab… vs load.npz "
        "sha256:data…, load-mlp_fp32_tuned.json vs load-mlp_fp32.json): not compared in the A/B table"
    ]
    md = render(tmp_path)[0].read_text()
    assert AB_HEADER not in md
    assert "- mlp_fp32_tuned and mlp_fp32 were load-tested on different data" in md


def test_runs_of_one_precision_with_no_common_step_say_so(tmp_path: Path) -> None:
    _save(tmp_path, "a_fp32", [_step("a_fp32", 1, 500.0, 2.0)], "2026-12-01T04:00:00Z")
    _save(tmp_path, "b_fp32", [_step("b_fp32", 16, 900.0, 20.0)], "2026-12-01T04:01:00Z")
    assert load_results(tmp_path).ab.notes == [
        "a_fp32 and b_fp32 share no users/rate step: not compared in the A/B table; load-test them at one --users "
        "or --rate"
    ]


def test_an_fp32_and_int8_pair_keeps_its_verdict_and_gets_no_ab_table(tmp_path: Path) -> None:
    _save(tmp_path, "mlp_fp32", [_step("mlp_fp32", 4, 1000.0, 8.0)], "2026-12-01T04:20:05Z")
    _save(tmp_path, "mlp_int8", [_step("mlp_int8", 4, 1800.0, 5.0)], "2026-12-01T04:21:00Z")
    inputs = load_results(tmp_path)
    assert verdict_headline(inputs.verdict).startswith("PASS · INT8 1.80× FP32 served (mlp_int8 vs mlp_fp32")
    assert inputs.ab.tables == [] and inputs.ab.notes == []
    assert "A/B" not in render(tmp_path)[0].read_text()


def test_two_int8_configs_beside_fp32_get_both_the_verdict_and_their_ab_table(tmp_path: Path) -> None:
    _save(tmp_path, "mlp_fp32", [_step("mlp_fp32", 4, 1000.0, 8.0)], "2026-12-01T04:20:05Z")
    _save(tmp_path, "mlp_int8_i1", [_step("mlp_int8_i1", 4, 1500.0, 6.0)], "2026-12-01T04:21:00Z")
    _save(tmp_path, "mlp_int8_i2", [_step("mlp_int8_i2", 4, 1800.0, 5.0)], "2026-12-01T04:22:00Z")
    inputs = load_results(tmp_path)
    assert verdict_headline(inputs.verdict).startswith("PASS · INT8 1.50× FP32 served (mlp_int8_i1 vs mlp_fp32")
    (table,) = inputs.ab.tables
    assert table.precision == "INT8"
    assert [row[1:2] + row[-2:] for row in table.rows()] == [
        ["mlp_int8_i1", "base", "base"],
        ["mlp_int8_i2", "1.20×", "0.83×"],
    ]


def test_two_versions_of_a_model_of_unknown_precision_are_named_by_model_and_version(tmp_path: Path) -> None:
    """`loadtest --model digits@1,digits@2` of a deployment that records no precision: compared as one model's."""
    for version, rps, started in (("1", 800.0, "2026-12-01T04:00:00Z"), ("2", 1200.0, "2026-12-01T04:01:00Z")):
        record = RunIdentity(started, ["1", "2"], None, "load.npz", "sha256:data", **MACHINE)  # type: ignore[arg-type]
        LoadRun(f"digits@{version}", [_step(f"digits@{version}", 4, rps, 6.0)], identity=record).save(tmp_path)
    (table,) = load_results(tmp_path).ab.tables
    assert table.title() == "unknown precision: ratios to digits@1, load-tested first"
    assert [row[1:3] + row[-2:] for row in table.rows()] == [
        ["digits@1", "1, 2; ?", "base", "base"],  # a run from before the config was recorded
        ["digits@2", "1, 2; ?", "1.50×", "1.00×"],
    ]


def test_the_served_config_is_read_from_tritons_model_config() -> None:
    """What `served_identity` records of a run's model: a naive deployment and a tuned one told apart."""
    from loadtest.run_identity import served_config

    assert served_config({"max_batch_size": 0, "instance_group": [{"count": 1, "kind": "KIND_CPU"}]}) == (
        "no batching, 1 instance"
    )
    tuned = {"max_batch_size": 32, "dynamic_batching": {"max_queue_delay_microseconds": "500"}}
    assert served_config({**tuned, "instance_group": [{"count": 2}]}) == "max batch 32, queue 500 µs, 2 instances"
    assert served_config({"max_batch_size": 8}) == "max batch 8, no dynamic batching, 1 instance"
