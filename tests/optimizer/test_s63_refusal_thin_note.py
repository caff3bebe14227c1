"""A speed refusal whose drift held on thin evidence prints the note its header points to (session 63: face-api's
expression net's refusal read "budget holds on thin evidence (output 'expressions': see the note)" and printed no
note; it appeared only under --allow-slower). Under --quiet, where no note is printed, the header points to none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import optimizer.pipeline
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.speed import SpeedRecord
from quantserve.cli import main

THIN = {
    "output": "expressions",
    "metric": "top1_agreement",
    "value": 0.99,
    "lower_bound": 0.97524,
    "budget": 0.99,
    "rows": 300,
    "rows_needed": None,
}
NOTE = (
    "output 'expressions': top-1 agreement 0.99 over 300 held-out rows shows only ≥ 0.975 (95 % lower bound), not "
    "the budget's 0.99; no row count would at this rate"
)


def _refuse(options: Any) -> Any:
    verification = {
        "data": "heldout.npz",
        "holds": True,
        "budget": DriftBudget().to_dict(),
        "outputs": {"expressions": {"kind": "classification", "shape": [300, 7], "top1_agreement": 0.99}},
        "samples": 300,
        "thin_evidence": [THIN],
    }
    speed = SpeedRecord(10.0, 9.5, 1.05, 1.1, 8, 2, "a CPU", round_speedups=(1.04, 1.05, 1.06))
    line = speed.line(True)
    raise BudgetExceeded(line, {**getattr(line, "record", {}), "verification": verification})


def _run(argv: list[str], tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> int:
    return main([*argv, "optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "b")])


def test_the_refusal_prints_the_thin_evidence_note_its_header_names(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(optimizer.pipeline, "optimize", _refuse)
    assert _run([], tiny_onnx, calib_npz, tmp_path) == 1
    captured = capsys.readouterr()
    out, err = " ".join(captured.out.split()), " ".join(captured.err.split())  # rich wraps at the terminal's width
    assert "budget holds on thin evidence (output 'expressions': see the note)" in out, out
    assert f"quantserve: note: {NOTE}" in err, err


def test_under_quiet_the_header_points_to_no_note(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(optimizer.pipeline, "optimize", _refuse)
    assert _run(["--quiet"], tiny_onnx, calib_npz, tmp_path) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "note" not in out and "quantserve: note" not in captured.err, captured
    assert "budget holds on thin evidence (output 'expressions': held-out rows too few to show the budget)" in out
