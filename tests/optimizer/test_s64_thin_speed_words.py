"""A speed refusal beside a drift verdict on thin evidence says what "its drift is within the budget" rests on: the
header read "budget holds on thin evidence" while the refusal's line said it flatly, as a proven fact (session 64)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.speed import SpeedRecord
from quantserve.cli import main

SLOWER = SpeedRecord(1.0, 1.0 / 0.68, 0.68, 1.0, 8, 2, "a CPU")
# as `drift_evidence.thin_evidence` records them: 300 rows show 0.9933 only as ≥ 0.981, not 0.99 (face-api's gender)
GENDER = {"output": "gender", "metric": "top1_agreement", "value": 0.9933, "rows": 300, "lower_bound": 0.9806,
          "budget": 0.99, "rows_needed": 598}  # fmt: skip
AGE = {**GENDER, "output": "age", "lower_bound": 0.985, "rows_needed": 400}


def test_a_speed_refusal_on_thin_evidence_says_on_how_few_rows_the_drift_held() -> None:
    line = SLOWER.line(drift_holds=True, thin=[GENDER])
    assert line == (
        "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower); its drift is within the budget on only 300 "
        "held-out rows (thin evidence: output 'gender': top-1 agreement 0.9933 shows only ≥ 0.981 at its 95 % lower "
        "bound, not the budget's 0.99)"
    )
    assert line.record["refused_for"] == "speed"  # type: ignore[attr-defined]


def test_the_thinnest_output_is_named_and_the_others_counted() -> None:
    line = SLOWER.line(drift_holds=True, thin=[AGE, GENDER])
    assert line.endswith("output 'gender': top-1 agreement 0.9933 shows only ≥ 0.981 at its 95 % lower bound, not the "
                         "budget's 0.99; output 'age' thin too)")  # fmt: skip
    tokens = {**GENDER, "output": "tags", "metric": "token_agreement", "rows": 1600, "units": "real tokens"}
    assert "within the budget on only 1600 held-out real tokens (thin evidence: output 'tags': per-token top-1" in (
        SLOWER.line(drift_holds=True, thin=[tokens])
    )


def test_the_drift_words_are_unchanged_where_the_evidence_is_not_thin() -> None:
    assert SLOWER.line(drift_holds=True, thin=[]).endswith("(or pass --allow-slower); its drift is within the budget")
    assert SLOWER.line(drift_holds=False, thin=[GENDER]).endswith("; its drift misses the budget too")
    assert SLOWER.line(thin=[GENDER]) == "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"


def test_optimize_refusing_a_slower_int8_on_thin_evidence_says_so(
    tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """40 rows hold out 8: --allow-thin-evidence judges them, the header says "on thin evidence", and the speed
    refusal's drift words say the same, not a plain "within the budget"."""
    import make_tiny_models

    calib = make_tiny_models.write_digits_like_npz(tmp_path / "small.npz", samples=40)
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib), "--out", str(out), "--allow-thin-evidence"]
    assert main([*argv, "--min-speedup", "1000"]) == 1
    captured = capsys.readouterr()
    assert "budget holds on thin evidence" in captured.out
    assert "its drift is within the budget on only 8 held-out rows (thin evidence: output 'logits': top-1" in (
        captured.err
    )
    assert not out.exists()
