"""The report and accuracy.json of a served decoder judged request by request (its answer's length follows its
values). For m_longer, whose answer changed shape in 22 of 40 requests, report.md's "Accuracy drift" table read
"– | – | – | 0.00000 | 0.00000" and accuracy.json's top level cosine_mean 1.0 and mean_abs_diff 0.0: "identical",
from the 18 requests of the reference's shape at best. Now the table shows the per-request figures with their basis
(over how many requests of the reference's shape, how many changed), evaluate's drift rows say it too, and no
top-level figure claims more than the requests compared; their record is kept beside them (session 66)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.accuracy_results import AccuracyReport
from loadtest.report_accuracy import accuracy_rows, marked_drift_rows
from loadtest.served_answers import ServedModel
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData
from quantserve.runner import RequestLog, concat_outputs

LENGTHS = {"fp32": (2, 3, 1), "same": (2, 3, 1), "longer": (2, 4, 1)}


def _answers(model: str) -> list[np.ndarray]:
    """Each request's [1, T, 8]; 'longer' answers request 2 one step longer, its other values FP32's own."""
    rng = np.random.default_rng(0)
    answers = [rng.random((1, t, 8)).astype(np.float32) + 0.5 for t in (2, 4, 1)]
    return [a[:, :t] for a, t in zip(answers, LENGTHS[model], strict=True)]


def _served(monkeypatch: pytest.MonkeyPatch) -> None:
    def served_outputs(url, model, data, batch_size, source, served=None, request_timeout_s=30.0, state=None):  # type: ignore[no-untyped-def]
        answers = _answers(model)
        log = RequestLog()
        for answer in answers:
            log.record({"x": np.zeros((1, 8), np.float32)}, {"y": answer})
        served[model] = ServedModel("1", requests=log)
        return concat_outputs([{"y": a} for a in answers], pad=True)

    monkeypatch.setattr(evaluator, "served_outputs", served_outputs)


def _saved(model: str, tmp_path: Path, budget: DriftBudget | None = DriftBudget()) -> AccuracyReport:
    data = TensorData({"x": np.zeros((3, 8), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", [model], "fp32", data, budget=budget)
    return AccuracyReport.load(report.save(tmp_path))


def _variant(report: AccuracyReport, model: str) -> Any:
    return next(v for v in report.variants if v.model == model)


def test_no_top_level_figure_claims_the_requests_whose_answer_changed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _served(monkeypatch)
    longer = _variant(_saved("longer", tmp_path), "longer")
    assert longer.cosine_mean is None and longer.cosine_min is None
    assert math.isnan(longer.mean_abs_diff) and math.isnan(longer.max_abs_diff)
    kept = longer.per_request  # the figures measured, beside what they were measured over
    assert (kept["output"], kept["requests"], kept["requests_same_shape"], kept["requests_changed"]) == ("y", 3, 2, 1)
    assert kept["cosine_mean"] == pytest.approx(1.0) and kept["max_abs_diff"] == 0.0


def test_the_accuracy_table_shows_the_per_request_figures_and_their_basis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _served(monkeypatch)
    header, rows = accuracy_rows(_saved("longer", tmp_path, budget=None))  # no budget: no drift record either
    assert header == ["model", "compared", "cosine mean", "cosine worst", "mean abs diff", "max abs diff"]
    row = next(r for r in rows if r[0] == "longer")
    assert row == [
        "longer",
        "over 2 of 3 requests of the reference's shape (1 changed shape: the answer changed)",
        "1.00000",
        "1.00000",
        "0.00000",
        "0.00000",
    ]
    assert next(r for r in rows if r[0] == "fp32")[1] == "over 3 of 3 requests (the reference itself)"


def test_evaluates_drift_rows_judge_the_per_request_figures_on_their_basis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _served(monkeypatch)
    report = _saved("longer", tmp_path)
    cells = [r.cells() for r in marked_drift_rows(report, _variant(report, "longer"))]
    kind = "per request (2 of 3 requests of the reference's shape)"
    assert cells == [
        ["longer", "y", kind, "share_same_shape", "0.6667", f"≥ {DriftBudget().min_sequence_agreement:g}", "MISSED"],
        ["longer", "y", kind, "cosine_mean", "1", f"≥ {DriftBudget().min_cosine_mean:g}", "ok"],
        ["longer", "y", kind, "cosine_worst", "1", f"≥ {DriftBudget().min_cosine_worst:g}", "ok"],
    ]


def test_figures_over_every_request_stay_at_the_top_level(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _served(monkeypatch)
    same = _variant(_saved("same", tmp_path), "same")
    assert same.cosine_mean == pytest.approx(1.0) and same.max_abs_diff == 0.0
    assert same.per_request["requests_changed"] == 0


def test_the_reports_verdict_table_has_the_per_request_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """report.md's verdict drift table (loadtest.verdict.gather) showed no row for an output judged request by
    request: its failure line stood alone (session 66 review)."""
    from loadtest.verdict import gather

    _served(monkeypatch)
    verdict = gather(tmp_path, [], _saved("longer", tmp_path), [])
    rows = [r.cells()[2:4] for r in verdict.drift if r.cells()[0] == "longer"]
    kind = "per request (2 of 3 requests of the reference's shape)"
    assert [kind, "share_same_shape"] in rows and [kind, "cosine_worst"] in rows


def test_a_share_of_changed_answers_within_the_sequence_budget_is_a_note(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """optimize ships such an INT8 build where the share of requests of FP32's length meets --min-sequence-agreement;
    evaluate had failed the same build on any changed request (session 66 review)."""
    _served(monkeypatch)
    longer = _variant(_saved("longer", tmp_path, budget=DriftBudget(min_sequence_agreement=0.5)), "longer")
    assert not longer.violations
    assert any("0.6667 of requests kept it, within the budget's 0.5" in note for note in longer.notes)
    strict = _variant(_saved("longer", tmp_path / "strict"), "longer")
    assert any("its shape differs from the reference's in 1 of 3 requests" in v for v in strict.violations)
