"""The verdict tells INT8 from FP32 by the precision each deployment recorded, not by the model names.

An INT8 build deployed as `sw_fp32` and FP32 as `sw_int8` was reported as "INT8 0.68× FP32" (the ratio upside
down); deployed as `alpha` and `beta`, as "not measured" although both were load-tested. Results without a recorded
precision (older files, models deployed by another tool) still go by the names, and the report says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity

FROM_NAMES = "taken from the model names"


def _step(model: str, rps: float, users: int = 4) -> LoadResult:
    latency = LatencySummary(int(rps * 10), 5.0, 5.0, 6.0, 7.0, 8.0, 2.0, 9.0)
    return LoadResult(model, "127.0.0.1:8001", "closed", users, 10.0, int(rps * 10), 0, rps, rps, latency)


def _folder(tmp_path: Path, runs: dict[str, tuple[float, str | None]], reference: str | None = None) -> Path:
    """A results folder with a closed-loop run per model (its throughput and recorded precision, with its source model
    and data where a precision is: one model's variants), and an accuracy report against `reference` if one is
    given."""
    folder = tmp_path / "r"
    for model, (rps, precision) in runs.items():
        identity = (
            RunIdentity("2026-11-30T12:00:00Z", ["1"], "sha256:one", "d.npz", "sha256:same") if precision else None
        )
        LoadRun(model, [_step(model, rps)], precision=precision, identity=identity).save(folder)
    if reference is not None:
        drift = {"logits": {"kind": "classification", "top1_agreement": 1.0}}
        variants = [VariantAccuracy(m, 64, 1.0, drift=drift, precision=p) for m, (_, p) in runs.items()]
        AccuracyReport(reference, "heldout.npz", "logits", False, None, variants).save(folder)
    return folder


def _verdict(folder: Path) -> tuple[str, str]:
    """The headline and the whole verdict section of report.md."""
    md = render(folder)[0].read_text()
    section = md.split("## Load")[0]
    return re.search(r"\*\*(.+)\*\*", section).group(1), section  # type: ignore[union-attr]


def test_swapped_names_are_compared_by_the_recorded_precision(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"sw_fp32": (147.0, "int8"), "sw_int8": (100.0, "fp32")})
    headline, section = _verdict(folder)
    assert headline.startswith("PASS · INT8 1.47× FP32 served (sw_fp32 vs sw_int8, 147.0 vs 100.0 req/s at 4 users)")
    assert "- Note: sw_fp32 is served as INT8 (its deployment's precision), though its name says FP32" in section
    assert "- Note: sw_int8 is served as FP32 (its deployment's precision), though its name says INT8" in section
    assert FROM_NAMES not in section


def test_neutral_names_are_compared_by_the_recorded_precision(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"beta": (100.0, "fp32"), "alpha": (147.0, "int8")})
    headline, section = _verdict(folder)
    assert "INT8 1.47× FP32 served (alpha vs beta, 147.0 vs 100.0 req/s at 4 users)" in headline
    assert "Note:" not in section


def test_the_evaluated_reference_is_fp32_and_precisions_come_from_accuracy_too(tmp_path: Path) -> None:
    """Load runs of an older loadtest record no precision; evaluate's accuracy.json does, and --reference is FP32."""
    folder = _folder(tmp_path, {"beta": (100.0, None), "alpha": (147.0, None), "digits_tuned": (150.0, None)}, "beta")
    report = AccuracyReport.load(folder / "accuracy.json")
    report.variants[1].precision, report.variants[2].precision = "int8", "fp32"
    report.save(folder)
    headline, section = _verdict(folder)
    # alpha pairs with both FP32 runs, the reference and digits_tuned (accuracy.json's precision): the headline
    # gives the lowest, the reference's pair a note
    assert "INT8 0.98× FP32 served (alpha vs digits_tuned," in headline and "not measured" not in headline
    assert "- Note: served: INT8 alpha 1.47× FP32 beta (147.0 vs 100.0 req/s at 4 users)" in section
    assert FROM_NAMES not in section and "unknown" not in section


def test_without_a_recorded_precision_the_names_decide_and_the_report_says_so(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"m_fp32": (100.0, None), "m_int8": (147.0, None)})
    headline, section = _verdict(folder)
    assert "INT8 1.47× FP32 served (m_int8 vs m_fp32," in headline
    assert f"- Note: precision of m_fp32, m_int8 {FROM_NAMES}: their served config records none" in section


def test_neutral_names_without_a_recorded_precision_say_why_nothing_is_compared(tmp_path: Path) -> None:
    headline, section = _verdict(_folder(tmp_path, {"alpha": (147.0, None), "beta": (100.0, None)}, "beta"))
    assert headline.startswith("PASS · served INT8 vs FP32 not measured (precision unknown for alpha: see the notes)")
    assert "- Note: precision of alpha unknown:" in section and "redeploy them with quantserve deploy" in section


def test_files_from_before_the_precision_was_recorded_still_load(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"m_fp32": (100.0, "fp32"), "m_int8": (147.0, "int8")}, "m_fp32")
    for path in [folder / "load-m_fp32.json", folder / "accuracy.json"]:
        data = json.loads(path.read_text())
        data.pop("precision", None)
        for variant in data.get("variants", []):
            del variant["precision"]
        path.write_text(json.dumps(data))
    assert LoadRun.load(folder / "load-m_fp32.json").precision is None
    assert LoadRun.load(folder / "load-m_int8.json").precision == "int8"
    assert [v.precision for v in AccuracyReport.load(folder / "accuracy.json").variants] == [None, None]
