"""The report opens with the verdict (INT8 vs FP32 served and in-process, drift per output, pass/fail, machine).

Results here are written as the harness and evaluator write them, with chosen figures, so the
renderer's arithmetic and layout can be checked exactly; the browser test looks at the page at
1280×800 in headless Chromium and finds the verdict box inside the first screen.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.triton_metrics import ServerBreakdown
from optimizer.drift_budget import DriftBudget
from serving.machine import MACHINE_FILE

RPS = {"digits_fp32": {1: 80.0, 4: 250.0, 16: 400.0}, "digits_int8": {1: 150.0, 4: 520.0, 16: 884.0}}


def _step(model: str, users: int, rps: float) -> LoadResult:
    p50 = 1000.0 * users / rps
    latency = LatencySummary(int(rps * 10), p50, p50, p50 * 1.3, p50 * 1.5, p50 * 2, p50 / 2, p50 * 3)
    server = ServerBreakdown(int(rps * 10), 0, int(rps * 40), int(rps * 3), 13.3, 900.0, 120.0, 10.0, 700.0, 5.0)
    return LoadResult(
        model, "127.0.0.1:8001", "closed", users, 10.0, int(rps * 10), 0, rps, rps * 4, latency, 4, server=server
    )


def _variant(model: str, top1: float) -> VariantAccuracy:
    drift = {"logits": {"kind": "classification", "top1_agreement": top1, "accuracy_drop_points": 0.2}}
    return VariantAccuracy(model, 512, top1, accuracy=0.98, accuracy_drop_points=0.2, drift=drift)


def _results(folder: Path, int8_top1: float = 0.998) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for model, steps in RPS.items():
        LoadRun(model, [_step(model, users, rps) for users, rps in steps.items()]).save(folder)
    int8 = _variant("digits_int8", int8_top1)
    if int8_top1 < DriftBudget().min_top1_agreement:
        int8.violations = [f"output 'logits': top-1 agreement {int8_top1} < budget 0.99"]
    reference = VariantAccuracy("digits_fp32", 512, 1.0, accuracy=0.982, accuracy_drop_points=0.0)
    budget = DriftBudget().to_dict()
    AccuracyReport("digits_fp32", "heldout.npz", "logits", True, 1.0, [reference, int8], budget).save(folder)
    machine = {"model": "Test CPU 9000", "logical_cores": 2, "usable_cores": 2, "isa": ["AVX2", "AVX512-VNNI"]}
    (folder / MACHINE_FILE).write_text(json.dumps(machine))
    return folder


def _build(folder: Path) -> Path:
    speed = {"fp32_ms": 3.0, "int8_ms": 1.2, "speedup": 2.5, "min_speedup": 1.0, "batch_size": 8, "threads": 2}
    verification = {"speed": {**speed, "cpu": "Test CPU 9000", "holds": True, "enforced": True}}
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"name": "digits_int8", "precision": "int8", **{"verification": verification}})
    )
    return folder


def test_verdict_comes_first_with_speedups_drift_and_machine(tmp_path: Path) -> None:
    results = _results(tmp_path / "r")
    md_path, html_path = render(results, [_build(tmp_path / "build")])
    md, html = md_path.read_text(), html_path.read_text()
    assert md.index("## Verdict") < md.index("## Load") < md.index("## Accuracy")
    headline = re.search(r"\*\*(.+)\*\*", md).group(1)  # type: ignore[union-attr]
    assert headline.startswith("PASS")
    assert "INT8 2.21× FP32 served (digits_int8 vs digits_fp32, 884.0 vs 400.0 req/s at 16 users)" in headline
    assert "2.50× in-process (digits_int8, 2 threads)" in headline
    assert "| digits_int8 | logits | classification | top1_agreement | 0.998 | ≥ 0.99 | ok |" in md
    assert "Machine: Test CPU 9000, 2 cores (AVX2 AVX512-VNNI)." in md
    assert html.index('id="verdict"') < html.index("<svg")
    assert 'class="verdict"' in html and '<span class="ok">PASS</span>' in html and "FAIL" not in html


def test_a_variant_over_budget_fails_the_verdict(tmp_path: Path) -> None:
    _, html_path = render(_results(tmp_path / "r", int8_top1=0.9))
    html = html_path.read_text()
    assert 'class="verdict failed"' in html
    assert '<span class="fail">FAIL</span> · INT8 2.21× FP32 served' in html
    assert "digits_int8: output &#x27;logits&#x27;: top-1 agreement 0.9 &lt; budget 0.99" in html
    assert "MISSED" in html


def test_charts_share_the_width_in_thirds(tmp_path: Path) -> None:
    html = render(_results(tmp_path / "r"))[1].read_text()
    assert "grid-template-columns:repeat(3,minmax(0,1fr))" in html and ".charts svg{width:100%" in html


def _chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=90, check=False)


# appended to a copy of the report: writes the verdict box's bounding box where --dump-dom shows it
BOX_SCRIPT = """<script>
const box = document.getElementById('verdict').getBoundingClientRect();
const out = document.createElement('pre'); out.id = 'box';
out.textContent = JSON.stringify({top: box.top, bottom: box.bottom, left: box.left, right: box.right,
  height: window.innerHeight, width: window.innerWidth, charts: [...document.querySelectorAll('.charts svg')]
  .map(s => s.getBoundingClientRect().width)});
document.body.appendChild(out);
</script>"""


def test_verdict_is_visible_without_scrolling_at_1280x800(tmp_path: Path, chromium: str) -> None:
    from PIL import Image

    results = _results(tmp_path / "r", int8_top1=0.9)
    html_path = render(results, [_build(tmp_path / "build")])[1]
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", BOX_SCRIPT + "</body>"))
    dom = _chromium(chromium, tmp_path, "--window-size=1280,800", "--dump-dom", probe.as_uri()).stdout
    box = json.loads(re.search(r'<pre id="box">(.+?)</pre>', dom).group(1))  # type: ignore[union-attr]
    # headless Chromium's layout viewport in --dump-dom is the window less its frame (657 px tall here): stricter
    assert box["width"] == 1280 and 600 <= box["height"] <= 800
    assert 0 <= box["top"] < box["bottom"] <= box["height"], f"the verdict is not inside the first screen: {box}"
    assert all(box["width"] / 4 < w < box["width"] / 3 for w in box["charts"]), f"charts are not a third each: {box}"
    shot = tmp_path / "first-screen.png"
    _chromium(chromium, tmp_path, "--window-size=1280,800", f"--screenshot={shot}", html_path.as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 800)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    # the failing verdict's red border (#b00) is painted inside the first screen
    red = int(((pixels[:, 0] > 150) & (pixels[:, 1] < 40) & (pixels[:, 2] < 40)).sum())
    assert red > 200, "no red verdict border in the first screen"


@pytest.mark.parametrize("field", ["served", "in_process", "drift"])
def test_verdict_fields_are_plain_data(tmp_path: Path, field: str) -> None:
    from loadtest.report import load_results

    verdict = load_results(_results(tmp_path / "r"), [_build(tmp_path / "build")]).verdict
    assert getattr(verdict, field)
    assert dataclasses.is_dataclass(verdict)


def test_the_report_command_says_the_verdict_and_what_was_not_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from quantserve.cli import main

    results = _results(tmp_path / "r")
    for load in results.glob("load-*.json"):
        load.unlink()
    assert main(["report", str(results)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == (
        "PASS · served INT8 vs FP32 not measured (load-test both variants into this folder) · "
        "drift: 2 of 2 budgeted metrics within budget"
    )


def test_the_report_command_exits_1_on_a_fail_verdict_and_still_writes_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It exited 0 whatever the verdict, so `quantserve report X && roll-out` let a FAIL through."""
    from quantserve.cli import main

    failing = _results(tmp_path / "fail", int8_top1=0.9)
    assert main(["report", str(failing)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL")
    assert (failing / "report.md").is_file() and (failing / "report.html").is_file()
    assert main(["report", str(_results(tmp_path / "pass"))]) == 0
