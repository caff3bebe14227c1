"""`evaluate` of two builds of different source models: the console says so beside the drift verdict. The probe's
`--models o_dense --reference o_dense2` exited 1 with "misses the drift budget: top-1 agreement 0.3281" and nothing
else; why the drift was that large ("different models") was only in report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtest import evaluator
from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from quantserve.cli import main

DENSE = "sha256:0069aa11bb22cc33dd44"
DENSE2 = "sha256:7417ee55ff66aa77bb88"


def _two_models(*args: Any, **kwargs: Any) -> AccuracyReport:
    """What the evaluator scored: o_dense against o_dense2, each with the source its deployment recorded."""
    reference = VariantAccuracy("o_dense2", 256, top1_agreement=1.0, version="1", precision="fp32", source=DENSE2)
    variant = VariantAccuracy("o_dense", 256, top1_agreement=0.3281, version="1", precision="fp32", source=DENSE)
    variant.violations = ["top-1 agreement 0.3281 < budget 0.99"]
    return AccuracyReport("o_dense2", "d.npz", "probs", False, None, [reference, variant])


def test_evaluate_of_two_different_models_says_so_on_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(evaluator, "evaluate_accuracy", _two_models)
    argv = ["evaluate", "--url", "127.0.0.1:1", "--models", "o_dense", "--reference", "o_dense2", "--data", "d.npz"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "quantserve: note: o_dense and the reference o_dense2 are different models (source sha256:0069aa11bb22… vs "
        "sha256:7417ee55ff66…): its drift and accuracy drop compare two models, not an INT8 variant with its original"
    ]
    verdict = "model 'o_dense' misses the drift budget: top-1 agreement 0.3281 < budget 0.99"
    assert captured.out.splitlines()[-1] == verdict


def test_evaluate_of_variants_of_one_model_adds_no_such_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def one_model(*args: Any, **kwargs: Any) -> AccuracyReport:
        report = _two_models()
        report.variants[1].source = DENSE2
        return report

    monkeypatch.setattr(evaluator, "evaluate_accuracy", one_model)
    argv = ["evaluate", "--url", "127.0.0.1:1", "--models", "o_dense", "--reference", "o_dense2", "--data", "d.npz"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert "different models" not in capsys.readouterr().err
