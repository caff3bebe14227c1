"""Labels optimize cannot score are said, not dropped (session 41): ids 3..6 for a 4-class output, or labels of
shape (N, 1), left no accuracy row and the accuracy budget unjudged, exit 0, with no word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.drift_metrics import labels_unused
from quantserve.cli import main


def test_why_labels_cannot_score_is_told() -> None:
    scores = np.zeros((5, 4), np.float32)
    assert labels_unused(np.array([0, 1, 2, 3, 0]), scores) == ""
    assert labels_unused(np.array([3, 4, 5, 6, 3]), scores) == (
        "3 class id(s) outside 0..3, the output's 4 classes (first: 4 in row 1)"
    )
    assert labels_unused(np.zeros((5, 1), np.int64), scores).startswith("labels of shape (5, 1)")
    assert labels_unused(np.zeros(5, np.float32), scores) == "", "float truth is a metric's"
    assert labels_unused(np.zeros((5, 7), np.int64), scores) == "", "token labels are a token output's"
    assert labels_unused(None, scores) == ""


def test_optimize_says_its_labels_were_not_scored(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with np.load(calib_npz) as data:
        arrays = dict(data)
    arrays["labels"] = arrays["labels"] + 100
    shifted = tmp_path / "shifted.npz"
    np.savez(shifted, **arrays)
    argv = ["optimize", str(tiny_onnx), "--calib", str(shifted), "--out", str(tmp_path / "b"), "--skip-timing"]
    main(argv)
    err = capsys.readouterr().err
    assert "output 'logits': labels not scored: 268 class id(s) outside 0..9" in err
    assert "the accuracy budget were not judged" in err
