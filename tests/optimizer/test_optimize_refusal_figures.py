"""A refused optimize shows the figures its one line rests on (stdout, before the line on stderr), and a build shipped
on uncertain rounds under --allow-slower says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from optimizer.drift_budget import BudgetExceeded
from optimizer.speed import SpeedRecord
from optimizer.verify import drift_refusal
from quantserve.cli import main
from quantserve.cli.commands.optimize import speed_notes
from quantserve.cli.optimize_tables import print_refusal_figures, print_verification

REPORTED = (1.55, 1.11, 1.16, 0.90, 0.91, 1.19)  # session 20: shipped at 1.13× with 78 % of the cores busy
UNCERTAIN = SpeedRecord(100.0, 88.1, 1.135, 1.1, 8, 2, "a CPU", round_speedups=REPORTED, others_share=0.78)


def _text(print_it: object, *args: object) -> str:
    console = Console(width=120, record=True, force_terminal=False)
    print_it(*args, console)  # type: ignore[operator]
    return console.export_text()


def test_a_speed_refusal_prints_the_speed_row_on_stdout_before_its_line(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--min-speedup", "1000"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "speedup, batch 8" in captured.out and "≥ 1000" in captured.out and " ms)" in captured.out
    assert "budget holds" in captured.out  # the drift figures behind "its drift is within the budget"
    assert "below --min-speedup 1000" in captured.err and "below --min-speedup" not in captured.out
    assert not out.exists()


def test_a_drift_refusal_prints_the_verification_table() -> None:
    verification = {
        "data": "heldout.npz",
        "holds": False,
        "samples": 268,
        "budget": {"min_cosine_mean": 0.99},
        "outputs": {"feature": {"kind": "embedding", "cosine_mean": 0.6759}},
        "violations": [
            {"output": "feature", "metric": "cosine_mean", "value": 0.6759, "budget": 0.99, "scope": "output"}
        ],
    }
    refusal = BudgetExceeded(drift_refusal(verification))
    text = _text(print_refusal_figures, refusal.record)
    assert "verification vs FP32 (heldout.npz): budget MISSED" in text and "0.6759" in text and "268" in text
    assert _text(print_refusal_figures, {"refused_for": "time"}) == ""  # nothing behind it to show


def test_a_speed_refusal_with_its_verification_shows_both() -> None:
    verification = {"holds": True, "outputs": {"logits": {"kind": "classification", "top1_agreement": 1.0}}}
    record = {"refused_for": "speed", "speed": UNCERTAIN.to_dict(), "verification": verification}
    text = _text(print_refusal_figures, record)
    assert "budget holds" in text and "top1_agreement" in text
    assert "1.14× (100 → 88.1 ms), busy: others took 78% of the cores, uncertain: rounds 0.90-1.55×" in text


def test_uncertain_rounds_shipped_under_allow_slower_are_noted_and_shown() -> None:
    assert speed_notes(UNCERTAIN.to_dict()) == [
        "INT8's speedup is uncertain: its 6 timing rounds spread 0.90-1.55× FP32 (median 1.14×, 2 of them below "
        "1.00×) while other processes used 78% of the cores: shipped under --allow-slower; time again on a quiet "
        "machine"
    ]
    text = _text(print_verification, {"outputs": {}, "speed": UNCERTAIN.to_dict()})
    assert "uncertain: rounds 0.90-1.55×" in text
    settled = SpeedRecord(10.0, 5.0, 2.0, 1.1, 8, 2, "a CPU", round_speedups=(1.98, 2.03, 2.0), others_share=0.05)
    assert speed_notes(settled.to_dict()) == []
    assert "uncertain" not in _text(print_verification, {"speed": settled.to_dict()})
