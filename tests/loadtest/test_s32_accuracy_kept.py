"""A second `evaluate` into one --out (session 32, issue 11), no server here (the evaluator stands in): it rewrote
accuracy.json, losing the earlier evaluation (other variants, another reference) without a word. A results folder
holds one evaluation, as one load run of a model: refused before any request, naming the file and the way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.accuracy_results import ACCURACY_FILE, AccuracyReport, VariantAccuracy
from quantserve import cli

DEAD_URL = "127.0.0.1:1"


def _argv(tmp_path: Path, models: str, reference: str) -> list[str]:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    argv = ["evaluate", "--url", DEAD_URL, "--models", models, "--reference", reference, "--data", str(data)]
    return [*argv, "--out", str(tmp_path / "out")]


def _scored(calls: list[str]) -> Any:
    """The evaluator's stand-in: each variant scored in agreement with the reference, the call counted."""

    def evaluate_accuracy(url: str, models: list[str], reference: str, *args: Any, **kwargs: Any) -> AccuracyReport:
        calls.append(",".join(models))
        variants = [VariantAccuracy(model, 4, top1_agreement=1.0, version="1") for model in models]
        return AccuracyReport(reference, "d.npz", "y", False, None, variants)

    return evaluate_accuracy


def test_a_second_evaluation_into_one_out_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(evaluator, "evaluate_accuracy", _scored(calls))
    assert cli.main(_argv(tmp_path, "a_fp32,a_int8", "a_fp32")) == 0
    saved = tmp_path / "out" / ACCURACY_FILE
    first = saved.read_text()
    capsys.readouterr()
    assert cli.main(_argv(tmp_path, "b_fp32,b_int8", "b_fp32")) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {saved}: an earlier evaluation (of a_int8 against a_fp32) is saved here; give this one "
        "another --out, or remove that file to evaluate again in its place\n"
    )
    assert saved.read_text() == first and calls == ["a_fp32,a_int8"]


def test_a_file_that_does_not_say_what_it_evaluated_is_kept_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(evaluator, "evaluate_accuracy", _scored(calls))
    saved = tmp_path / "out" / ACCURACY_FILE
    saved.parent.mkdir()
    saved.write_text("not json\n")
    assert cli.main(_argv(tmp_path, "a_int8", "a_fp32")) == 2
    assert capsys.readouterr().err.startswith(f"quantserve: error: {saved}: an earlier evaluation is saved here; ")
    assert saved.read_text() == "not json\n" and not calls
