"""`quantserve bench --quick` as a command: the five rows, the ratios from them, the machine, the compute.

A command run on a tiny model (real torch, ONNX Runtime, optimize, tritonserver, Locust); nothing
here asserts a speed — the figures are only checked to be measured and consistent.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW_KEYS = ["torch_eager_fp32", "ort_fp32", "ort_int8", "triton_fp32_naive", "triton_int8_tuned"]
FIGURES = ("saturation_samples_per_s", "concurrent_samples_per_s", "p50_ms", "p99_ms")
RATIOS = {"5/1": (5, 1, "concurrent"), "5/4": (5, 4, "concurrent"), "3/2": (3, 2, "saturation")}
RATIOS["served5/inprocess3"] = (5, 3, "saturation")


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    argv = [sys.executable, "-m", "quantserve", "bench", "--quick", "--json"]
    argv += ["--out", str(tmp / "out"), "--build", str(tmp / "build")]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), tmp / "out"


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_bench_has_all_five_rows_measured(quick_bench: tuple[dict, Path]) -> None:
    document, out = quick_bench
    assert json.loads((out / "bench.json").read_text()) == document  # --json prints what bench.json holds
    assert list(document["models"]) == ["tiny"]
    model = document["models"]["tiny"]
    assert [row["key"] for row in model["rows"]] == ROW_KEYS
    assert [row["where"] for row in model["rows"]] == ["in-process"] * 3 + ["served"] * 2
    for row in model["rows"]:
        for figure in FIGURES:
            assert len(row[figure]["runs"]) == 1, (row["key"], figure)  # --quick: one repeat
            assert row[figure]["median"] > 0, (row["key"], figure)
            assert row[figure]["min"] <= row[figure]["median"] <= row[figure]["max"]
    naive, tuned = model["rows"][3], model["rows"][4]
    assert naive["config"]["max_batch"] == 0 and naive["config"]["instances"] == 1
    assert tuned["config"]["max_batch"] > 0 and "fixed dynamic batching" in model["tune"]["source"]
    assert naive["extra"]["failed_requests"]["median"] == 0 and tuned["extra"]["failed_requests"]["median"] == 0


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_bench_ratios_are_computed_from_the_rows(quick_bench: tuple[dict, Path]) -> None:
    model = quick_bench[0]["models"]["tiny"]
    rows = {row["row"]: row for row in model["rows"]}
    assert set(model["ratios"]) == set(RATIOS)
    for key, (top, bottom, figure) in RATIOS.items():
        name = f"{figure}_samples_per_s"
        expected = rows[top][name]["median"] / rows[bottom][name]["median"]
        assert model["ratios"][key]["value"] == pytest.approx(expected), key
    assert model["ratios"]["5/1"]["target"] == 3.0 and model["ratios"]["3/2"]["target"] is None  # CNN-only bar
    assert isinstance(model["ratios"]["served5/inprocess3"]["met"], bool)


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_bench_records_the_machine_and_the_compute(quick_bench: tuple[dict, Path]) -> None:
    document = quick_bench[0]
    machine = document["machine"]
    assert machine["model"] and machine["usable_cores"] >= 1 and isinstance(machine["isa"], list)
    assert len(machine["load_average_start"]) == 3 and len(machine["load_average_end"]) == 3
    assert document["peak"]["int8"]["macs_per_call"] == 1024**3 and document["peak"]["int8"]["macs_per_s"] > 0
    compute = document["models"]["tiny"]["compute"]
    # the tiny CNN: Conv 1→8 3x3 on 8x8 and Conv 8→16 3x3 stride 2 (4x4 out), then Linear 16→10
    assert compute["macs_by_op"]["Conv"] == 8 * 8 * 8 * 9 + 16 * 4 * 4 * 8 * 9
    assert compute["macs_by_op"]["Gemm"] + compute["macs_by_op"]["MatMul"] == 16 * 10
    rate = document["models"]["tiny"]["rows"][2]["saturation_samples_per_s"]["median"]
    achieved = compute["achieved_macs_per_s"]["in-process INT8 at saturation (row 3)"]
    share = compute["int8_mac_share"]  # only the INT8 build's INT8 multiply-adds count against the INT8 peak
    assert share == document["models"]["tiny"]["builds"]["int8"].get("int8_mac_share")
    counted = compute["macs_per_sample"] * (1.0 if share is None else min(share, 1.0))
    assert math.isclose(achieved, rate * counted, rel_tol=1e-9)
    assert any("INT8 peak" in line for line in compute["arithmetic"])


def test_an_unknown_model_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve.cli import main

    assert main(["bench", "--models", "cnn,resnet50", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "quantserve: error: --models: unknown resnet50; choose from demo, cnn, encoder"
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.e2e
@pytest.mark.slow
def test_sigterm_stops_the_bench_and_every_server_it_started(quick_bench: tuple[dict, Path], tmp_path: Path) -> None:
    """SIGTERM takes Ctrl-C's path (quantserve.cli.main): the bench's tritonserver and Locust go with it. The
    builds are the quick bench's, reused (a fresh fit and optimize took half of this test's time)."""
    import os
    import signal

    import psutil

    argv = [sys.executable, "-m", "quantserve", "bench", "--quick", "--out", str(tmp_path / "out")]
    argv += ["--build", str(quick_bench[1].parent / "build")]
    env = {**os.environ, "COLUMNS": "200"}
    bench = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert bench.stdout is not None
    children: list[psutil.Process] = []
    try:
        for line in bench.stdout:  # once the naive row is measured, its tritonserver serves the tuned row
            if "Triton FP32 naive" in line:
                break
        children = psutil.Process(bench.pid).children(recursive=True)
        assert any("tritonserver" in p.name() for p in children), "the bench started no tritonserver"
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 130
    finally:
        if bench.poll() is None:
            bench.kill()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running after SIGTERM: {[p.name() for p in alive]}"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--quick", "--models", "nonsense"], "--quick benches its tiny model only; drop --models"),
        (["--quick", "--slo-p99-ms", "nan"], "--slo-p99-ms must be a positive number of ms, got nan"),
        (["--slo-p99-ms", "inf"], "--slo-p99-ms must be a positive number of ms, got inf"),
        (["--slo-p99-ms", "0"], "--slo-p99-ms must be a positive number of ms, got 0"),
        (["--slo-p99-ms", "-3"], "--slo-p99-ms must be a positive number of ms, got -3"),
    ],
)
def test_flags_bench_would_ignore_or_misread_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """Before, `--quick --models nonsense` and `--slo-p99-ms nan` were accepted and the bench ran."""
    from quantserve.cli import main

    assert main(["bench", *flags, "--out", str(tmp_path / "out"), "--build", str(tmp_path / "build")]) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: {message}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "build").exists()


def test_bench_settings_refuse_a_non_finite_slo() -> None:
    from quantserve.cli.bench import BenchSettings
    from quantserve.errors import QuantserveError

    with pytest.raises(QuantserveError, match="--slo-p99-ms a finite number"):
        BenchSettings(slo_p99_ms=math.nan).check()
