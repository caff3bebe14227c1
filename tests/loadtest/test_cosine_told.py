"""evaluate's table and the report show a per-sample cosine only for an output judged as an embedding: beside a
faithful word segmenter's per-character emissions (judged by tag agreement, "ok") it read `cosine min -0.6796`, and
beside a detector whose scores were all 0 it read 0.9996."""

from __future__ import annotations

import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report_accuracy import accuracy_rows
from quantserve.cli.evaluate_tables import print_table


def _report(kind: str) -> AccuracyReport:
    reference = VariantAccuracy("kh_fp32", 272, 0.0, 0.0, cosine_mean=1.0, cosine_min=1.0, cosine_p01=1.0)
    int8 = VariantAccuracy("kh_int8", 272, 0.01, 0.5, cosine_mean=0.98, cosine_min=-0.6796, cosine_p01=0.2)
    int8.drift = {"emissions": {"kind": kind, "token_top1_agreement": 0.9937}}
    return AccuracyReport("kh_fp32", "held.npz", "emissions", False, None, [reference, int8])


def test_a_token_classifiers_table_shows_no_cosine(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report("token_classification")
    header, rows = accuracy_rows(report)
    assert header[1:4] == ["cosine mean", "cosine min", "cosine p1"] and rows[1][1:4] == ["–", "–", "–"]
    print_table(report)
    assert "-0.6796" not in capsys.readouterr().out


def test_an_embeddings_table_keeps_its_cosine(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report("embedding")
    _, rows = accuracy_rows(report)
    assert rows[1][1:4] == ["0.98000", "-0.67960", "0.20000"]
    print_table(report)
    assert "-0.6796" in capsys.readouterr().out


def test_the_reference_shows_no_cosine_where_the_others_do_not(capsys: pytest.CaptureFixture[str]) -> None:
    """The reference has no drift record: its cosine with itself (1.0000) stood beside "–" for the variant."""
    print_table(_report("token_classification"))
    out = capsys.readouterr().out
    cells = [line.replace("│", " ").split()[2:] for line in out.splitlines() if "cosine min" in line]
    assert cells and all(cell == "–" for row in cells for cell in row), out


def test_the_reports_reference_row_shows_no_cosine_where_the_others_do_not() -> None:
    """The report's table read 1.00000 for the reference beside "–" for an INT8 upscaler judged by PSNR (session 53:
    waifu2x's CUNet), as evaluate's table did for an ids output."""
    _, rows = accuracy_rows(_report("image"))
    assert rows[0][0] == "kh_fp32" and rows[0][1:4] == ["–", "–", "–"] and rows[1][1:4] == ["–", "–", "–"]
    _, rows = accuracy_rows(_report("embedding"))
    assert rows[0][1:4] == ["1.00000", "1.00000", "1.00000"]
