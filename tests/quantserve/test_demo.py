"""`quantserve demo` end to end, shortened: real training, optimize, deploy, tritonserver, Locust; then the
demo's tune step on those builds (tune's smallest quick search), and its failure path without a server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.cli import demo, main
from quantserve.cli.commands.demo import tune_lines
from quantserve.cli.demo import TUNED_NAME, DemoSettings, tune_served

# serial: it judges rates, latencies, time or memory, so it runs alone after the parallel part (make test)
pytestmark = pytest.mark.serial

V_KEYS = {
    "accuracy",
    "top1_agreement",
    "latency_p50_ms",
    "latency_p99_ms",
    "throughput_rps",
    "avg_batch_size",
    "failed_requests",
}
# --allow-slower: the demo's machinery is tested here, not this CPU's INT8 speed (the digits CNN ran 0.94× FP32 on an
# idle AMD EPYC without VNNI, session 31, and the speed gate stopped the demo: a timed test in all but name)
SHORTER = ["--epochs", "2", "--users", "8", "--sweep", "8", "--duration", "4", "--max-batch", "48", "--allow-slower"]

LOOSE_SLO_FACTOR = 100.0  # the tune step's SLO over FP32's p99 where the glue, not the machine, is tested


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One shortened demo without tune, shared: its summary is checked, its builds are tuned."""
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTSERVE_CACHE_DIR", str(root / "cache"))
        argv = ["demo", "--out", str(root / "reports"), "--build", str(root / "build"), "--repo", str(root / "repo")]
        assert main([*argv, *SHORTER, "--no-tune"]) == 0
        yield root


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_writes_the_summary_other_tools_read(demo_run: Path) -> None:
    out = demo_run / "reports"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "digits" and summary["target"] == "embedded"
    assert "tune" not in summary  # --no-tune
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
    assert summary["int8_in_process"]["speedup"] > 0  # the in-process figure report.html judges, and its word
    assert summary["report"]["verdict"] in ("PASS", "FAIL") and (out / "builds.json").is_file()
    steps = json.loads((out / "load-digits_int8.json").read_text())["results"]
    assert [step["users"] for step in steps] == [8]
    assert steps[0]["request_batch"] == 16  # the demo's default: compute-bound requests
    assert sorted(p.name for p in (demo_run / "repo").iterdir()) == ["digits_fp32", "digits_int8"]
    for name in ("digits_fp32", "digits_int8"):  # --max-batch reaches Triton's config
        assert "max_batch_size: 48\n" in (demo_run / "repo" / name / "config.pbtxt").read_text()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_tune_step_deploys_its_winner_and_reports_it(
    demo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from quantserve.cli import tune_trials

    # the demo's glue is under test here, not tune's statistics: 1 s windows, no warm-up, no stretching
    monkeypatch.setattr(tune_trials, "QUICK_WARMUP_S", 0.0)
    monkeypatch.setattr(tune_trials, "QUICK_WINDOW_S", 1.0)
    monkeypatch.setattr(tune_trials, "MIN_REQUESTS", 1)
    # nor whether this machine meets 1.5x the p99 the demo measured minutes before: on a loaded CI machine it missed
    # (322.8 ms against 313.4) and nothing was deployed; a loose SLO keeps the glue's path the tested one
    monkeypatch.setattr(demo, "TUNE_SLO_FACTOR", LOOSE_SLO_FACTOR)

    summary = json.loads((demo_run / "reports" / "summary.json").read_text())
    settings = DemoSettings(
        out=tmp_path / "reports", build=demo_run / "build", repo=tmp_path / "repo", users=8, tune_trials=1
    )
    section = tune_served(settings, demo_run / "build" / "heldout.npz", summary, say=lambda _: None)

    assert section["status"] == "ok", section
    assert section["slo_p99_ms"] == pytest.approx(
        LOOSE_SLO_FACTOR * summary["variants"]["fp32"]["latency_p99_ms"], 1e-3
    )
    assert section["precision"] in {"fp32", "int8"}
    assert section["trials"] == 2 and section["seconds"] > 0  # the baseline and one search trial
    assert section["goodput_ratio"] == pytest.approx(section["goodput_rps"] / section["baseline_goodput_rps"])
    document = json.loads(Path(section["tune_json"]).read_text())
    assert Path(section["tune_html"]).is_file()
    assert document["best"]["goodput_rps"] == section["goodput_rps"]
    assert document["baseline"]["goodput_rps"] == section["baseline_goodput_rps"]
    assert document["winner_precision"] == section["precision"]
    assert document["settings"]["users"] == 8 and document["settings"]["request_batch"] == 16
    assert document["settings"]["window_s"] == 1.0 and document["settings"]["quick"]

    deployed = section["deployed"]
    assert deployed["name"] == TUNED_NAME and Path(deployed["repo"]) == tmp_path / "repo"
    text = (tmp_path / "repo" / TUNED_NAME / "config.pbtxt").read_text()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.max_batch_size == section["max_batch"]
    assert config.instance_group[0].count == section["instances"]
    if section["max_batch"]:
        assert config.dynamic_batching.max_queue_delay_microseconds == section["max_queue_delay_us"]
    record = json.loads((tmp_path / "repo" / TUNED_NAME / str(deployed["version"]) / "deploy.json").read_text())
    assert record["precision"] == section["precision"]

    lines = tune_lines(section)
    assert len(lines) == 4 and f"best {section['precision'].upper()}," in lines[0]
    if section["max_batch"]:  # Triton's max batch counts images; tune chose it in 16-image requests
        assert f"max batch {section['max_batch']} ({section['max_batch'] // 16} requests)" in lines[0]
    assert lines[1].endswith(f": {section['goodput_ratio']:.2f}×") and "2 trials" in lines[2]
    assert f"as {TUNED_NAME} v{deployed['version']}" in lines[2] and section["tune_json"] in lines[3]


def test_a_failed_tune_step_is_one_line_and_keeps_the_comparison(tmp_path: Path) -> None:
    fp32 = {"latency_p99_ms": 100.0}
    summary = {"variants": {"fp32": fp32, "int8": {"latency_p99_ms": 50.0}}}
    settings = DemoSettings(out=tmp_path / "out", build=tmp_path / "no-builds", repo=tmp_path / "repo")
    section = tune_served(settings, tmp_path / "missing.npz", summary, say=lambda _: None)
    assert section["status"] == "failed" and "QuantserveError" in section["error"]
    assert not (tmp_path / "repo").exists()  # nothing deployed
    [line] = tune_lines(section)
    assert line.startswith("tune: failed (") and line.endswith("the served comparison above stands")

    unmeasured = {"variants": {"fp32": {**fp32, "latency_p99_ms": math.nan}}}
    section = tune_served(settings, tmp_path / "missing.npz", unmeasured, say=lambda _: None)
    assert section == {"status": "failed", "error": "the served comparison measured no FP32 p99 to set the SLO from"}
    assert tune_lines(None) == []


def test_tune_trials_are_checked_before_any_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--tune-trials", "0"]) == 2
    assert "--tune-trials must be at least 1, got 0" in capsys.readouterr().err
