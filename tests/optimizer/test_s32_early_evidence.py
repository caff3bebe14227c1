"""Held-out rows too few to show the drift budget are refused before fuse and calibration: the refusal depends only
on the row count and the outputs' kinds, which the exported FP32 model's outputs give (chython-rxnmap said "268
needed, 64 given" after 8 minutes, ~6 of them in fuse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optimizer.drift_budget import DriftBudget
from optimizer.early_evidence import early_evidence_refusal
from optimizer.fuse import FuseGraph
from quantserve.cli import main
from quantserve.data import TensorData, load_npz


@pytest.mark.parametrize("unbatched", [False, True])
def test_too_few_held_out_rows_are_refused_before_fuse(
    tiny_onnx: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unbatched: bool,
) -> None:
    import make_tiny_models

    def no_fuse(self: FuseGraph, *args: Any) -> Any:
        raise AssertionError("fuse ran before the held-out rows were counted")

    monkeypatch.setattr(FuseGraph, "__call__", no_fuse)
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=40)
    held = make_tiny_models.write_digits_like_npz(tmp_path / "eval.npz", samples=64)
    out = tmp_path / "out"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib), "--eval", str(held), "--out", str(out), "--skip-timing"]
    assert main([*argv, "--unbatched"] if unbatched else argv) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith(
        "quantserve: error: too few held-out rows to show the drift budget: output 'logits': top-1 agreement "
        "≥ 0.99 needs at least 268 held-out rows (95 % lower bound, every row agreeing), 64 given; nothing written"
    )
    assert not out.exists()


def test_enough_held_out_rows_run_no_model_before_fuse(tmp_path: Path) -> None:
    import make_tiny_models

    held = load_npz(make_tiny_models.write_digits_like_npz(tmp_path / "eval.npz", samples=268))
    missing = tmp_path / "not-run.onnx"  # 268 rows show any agreement budget: the model is not even opened
    assert early_evidence_refusal(missing, held, DriftBudget(), {}) is None


@pytest.mark.parametrize(("kinds", "runs"), [({}, [32, 64]), ({"logits": "dense"}, [32])])
def test_a_build_not_refused_pays_for_the_screen_rows_alone(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kinds: dict[str, str], runs: list[int]
) -> None:
    # a classification confirms its refusal on all 64 rows; a dense output needs no rows beyond those given
    import make_tiny_models

    from optimizer import early_evidence

    held = load_npz(make_tiny_models.write_digits_like_npz(tmp_path / "eval.npz", samples=64))
    rows_run: list[int] = []
    real_run = early_evidence.run_model

    def counted(path: Path, feeds: TensorData, batch_size: int = 64) -> Any:
        rows_run.append(len(feeds))
        return real_run(path, feeds, batch_size)

    monkeypatch.setattr(early_evidence, "run_model", counted)
    refusal = early_evidence_refusal(tiny_onnx, held, DriftBudget(), kinds)
    assert rows_run == runs and (refusal is None) == ("logits" in kinds)
