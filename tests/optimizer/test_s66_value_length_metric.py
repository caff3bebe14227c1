"""`optimize --unbatched` of a decoder whose answer length follows its values never called the user's --metric: the
only trace was a note, "--metric was not scored: its answers cannot be stacked across requests", while evaluate gave
the same metric the answers padded with NaN beside NAME__shapes and scored it (probe 66I: SLANet-plus's shape_acc
0.389 → 0.097 under INT8). A build whose lengths and cosine held but whose task metric dropped would have shipped.
Now optimize scores it on that padded form, FP32 against the build, judged against --max-metric-drop (session 66).

The metric here is an exact-match score against the first answers it is given (FP32's, scored first): INT8's
rounding moves every value, so it drops while the lengths and the cosine hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import Manifest
from quantserve.cli import main
from tests.optimizer.test_s66_value_length_int8 import _decoder

METRIC = '''
import numpy as np
SEEN = []
def exact(outputs, labels):
    """Share of each sample's own values (cut by y__shapes) equal to the first answers scored (FP32's)."""
    y, shapes = np.asarray(outputs["y"]), np.asarray(outputs["y__shapes"])
    SEEN.append((y.copy(), shapes.copy()))
    own = [y[i][tuple(slice(0, s) for s in shape)] for i, shape in enumerate(shapes)]
    first = SEEN[0][0]
    mine = [first[i][tuple(slice(0, s) for s in shape)] for i, shape in enumerate(SEEN[0][1])]
    return float(np.mean([np.mean(a == b) if a.shape == b.shape else 0.0 for a, b in zip(own, mine)]))
'''


def _optimize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str, *flags: str) -> list[str]:
    model, data = _decoder(tmp_path / "dec.onnx", tmp_path / "d.npz", False)
    (tmp_path / "s66vlmetric.py").write_text(METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "s66vlmetric", raising=False)  # its SEEN anew in each test
    out = str(tmp_path / "b")
    command = ["optimize", str(model), "--calib", str(data), "--out", out, "--precision", precision, "--unbatched"]
    return [*command, "--metric", "s66vlmetric:exact", "--allow-slower", *flags]


def _seen() -> list[tuple[np.ndarray, np.ndarray]]:
    import s66vlmetric  # type: ignore[import-not-found]

    return list(s66vlmetric.SEEN)


def test_int8_whose_task_metric_drops_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_optimize(tmp_path, monkeypatch, "int8")) == 1
    err = capsys.readouterr().err
    assert "was not scored" not in err, err
    line = err.strip().splitlines()[-1]
    assert "metric 's66vlmetric:exact'" in line and "relative drop" in line, line
    assert not (tmp_path / "b").exists()
    seen = _seen()
    assert len(seen) == 2, len(seen)  # FP32's answers, then the build's
    y, shapes = seen[0]
    assert y.shape == (12, 8, 8), y.shape  # one row a request (its leading 1 gone), padded to the longest T
    assert shapes.shape == (12, 2), shapes  # each sample's shape in the padded array: the rank of y[i]
    for row, shape in zip(y, shapes, strict=True):
        own = row[tuple(slice(0, s) for s in shape)]
        assert not np.isnan(own).any() and np.isnan(row).sum() == row.size - own.size, shape


def test_kept_failing_records_both_scores_and_the_lengths_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_optimize(tmp_path, monkeypatch, "int8", "--keep-failing")) == 0, capsys.readouterr().err
    record = Manifest.load(tmp_path / "b").verification
    assert record["outputs"]["y"]["requests_same_shape"] == 1.0, record  # the length share held: only the metric missed
    metric = record["metric"]
    assert metric["fp32"] == 1.0 and metric["int8"] < 0.5 and metric["relative_drop"] > 0.5, metric
    assert record["holds"] is False
    assert [v["scope"] for v in record["violations"]] == ["metric"], record["violations"]


def test_an_fp32_build_scores_the_metric_against_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_optimize(tmp_path, monkeypatch, "fp32")) == 0, capsys.readouterr().err
    record = Manifest.load(tmp_path / "b").verification
    metric = record["metric"]
    assert metric["fp32"] == metric["int8"] == 1.0, metric  # scored on both sides, as the stacked route scores it
    assert metric["relative_drop"] is None and metric["scored"] is False, metric  # labels=None and alike: no evidence
    assert record["holds"] is True
    assert not any("was not scored" in note for note in record["notes"]), record["notes"]
