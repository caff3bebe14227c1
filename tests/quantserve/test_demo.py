"""`quantserve demo` end to end, shortened: real training, optimize, deploy, tritonserver, Locust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantserve.cli import main

V_KEYS = {
    "accuracy",
    "top1_agreement",
    "latency_p50_ms",
    "latency_p99_ms",
    "throughput_rps",
    "avg_batch_size",
    "failed_requests",
}


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_writes_the_summary_other_tools_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "reports"
    argv = ["demo", "--out", str(out), "--build", str(tmp_path / "build"), "--repo", str(tmp_path / "repo")]
    shorter = ["--epochs", "2", "--users", "8", "--sweep", "8", "--duration", "4", "--max-batch", "48"]
    assert main([*argv, *shorter]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "digits" and summary["target"] == "embedded"
    assert set(summary["variants"]) == {"fp32", "int8"}
    for variant in summary["variants"].values():
        assert set(variant) >= V_KEYS
        assert variant["failed_requests"] == 0
        assert variant["accuracy"] > 0.5  # learned something even in 2 epochs
        assert variant["throughput_rps"] > 0
        assert variant["avg_batch_size"] >= 1.0
    assert summary["variants"]["int8"]["top1_agreement"] > 0.9
    speedup = summary["variants"]["int8"]["throughput_rps"] / summary["variants"]["fp32"]["throughput_rps"]
    assert summary["int8_speedup"] == pytest.approx(speedup)
    html = (out / "report.html").read_text()
    assert html.index('id="verdict"') < html.index("<svg")  # the verdict first, with the build's in-process speed
    assert "× FP32 served (digits_int8 vs digits_fp32" in html and "× in-process (digits_int8" in html
    assert "Machine: " in html and (out / "machine.json").is_file()
    steps = json.loads((out / "load-digits_int8.json").read_text())["results"]
    assert [step["users"] for step in steps] == [8]
    assert steps[0]["request_batch"] == 16  # the demo's default: compute-bound requests
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["digits_fp32", "digits_int8"]
    for name in ("digits_fp32", "digits_int8"):  # --max-batch reaches Triton's config
        assert "max_batch_size: 48\n" in (tmp_path / "repo" / name / "config.pbtxt").read_text()
