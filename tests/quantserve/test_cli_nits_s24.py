"""Session 24's noticed nits: a reader that leaves early is no error, and the per-model table's top-1 column shows
the figure the drift table shows."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from optimizer.drift_budget import DriftBudget
from quantserve import cli
from quantserve.cli.evaluate_tables import print_table


def _accuracy_folder(folder: Path) -> Path:
    drift = {"logits": {"kind": "classification", "top1_agreement": 0.998, "accuracy_drop_points": 0.2}}
    int8 = VariantAccuracy("digits_int8", 512, 0.998, accuracy=0.98, accuracy_drop_points=0.2, drift=drift)
    reference = VariantAccuracy("digits_fp32", 512, 1.0, accuracy=0.982, accuracy_drop_points=0.0)
    budget = DriftBudget().to_dict()
    AccuracyReport("digits_fp32", "heldout.npz", "logits", True, 1.0, [reference, int8], budget).save(folder)
    return folder


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    """`quantserve report DIR | head -1` where head has gone before quantserve writes: no "Broken pipe" line, no
    "Exception ignored" at exit, exit 1 (rich's own tables exit 1 the same way)."""
    results = _accuracy_folder(tmp_path / "results")
    argv = [sys.executable, "-m", "quantserve", "report", str(results)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader leaves before the first line: every write finds no reader
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert "Broken pipe" not in err and "BrokenPipeError" not in err
    assert err == ""
    assert code == 1
    assert (results / "report.md").is_file()  # the work was done; only its lines had nowhere to go


def test_a_broken_pipe_elsewhere_stays_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server's socket closing under a command is an error still: only a stdout whose reader left is quiet."""

    def broken(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("quantserve.cli.commands.doctor.run", broken)
    code = cli.main(["doctor"])
    assert (code, capsys.readouterr().err) == (2, "quantserve: error: [Errno 32] Broken pipe\n")


def _unlabelled_report() -> AccuracyReport:
    """As ICLabel's run saved it: a softmax head evaluated without labels, scored by cosine, its top-1 agreement
    measured by the drift budget only."""
    drift = {"labels": {"kind": "classification", "shape": [277, 7], "top1_agreement": 0.9927797833935018}}
    reference = VariantAccuracy("icl_fp32", 277, cosine_mean=1.0, cosine_min=1.0, version="1", precision="fp32")
    int8 = VariantAccuracy("icl_int8", 277, cosine_min=0.9909, drift=drift, version="1", precision="int8")
    return AccuracyReport("icl_fp32", "held.npz", "labels", False, 1.0, [reference, int8], DriftBudget().to_dict())


def _top1_cells(report: AccuracyReport) -> dict[str, str]:
    """Each model's "top-1 agree" cell in the per-model table (the drift table below it left out)."""
    console = Console(width=200, record=True, force_terminal=False)
    print_table(report, console)
    table = console.export_text().split("drift per output")[0].splitlines()
    header = [cell.strip() for cell in next(line for line in table if line.startswith("┃")).split("┃")]
    rows = [[cell.strip() for cell in line.split("│")] for line in table if line.startswith("│")]
    return {row[1]: row[header.index("top-1 agree")] for row in rows}


def test_top1_column_shows_the_drift_tables_figure_without_labels() -> None:
    # the reference agrees with itself where another variant has a figure
    assert _top1_cells(_unlabelled_report()) == {"icl_fp32": "1.0000", "icl_int8": "0.9928"}


def test_top1_column_keeps_the_labelled_score() -> None:
    report = _unlabelled_report()
    report.variants[1].top1_agreement = 0.75  # scored with labels: that figure, not the drift record's
    assert _top1_cells(report)["icl_int8"] == "0.7500"
    report.variants[1].drift = None  # nothing measured it: a dash, as before
    report.variants[1].top1_agreement = None
    assert _top1_cells(report) == {"icl_fp32": "–", "icl_int8": "–"}


def _closed_port() -> int:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing answers there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refused_trace_run(tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A trace replay that reads fine and is then refused (no server at --url); its error line."""
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 3), np.float32))
    (tmp_path / "trace.csv").write_text("timestamp\n3.0\n1.0\n2.0\n")  # out of order: sorted, not refused
    url = f"127.0.0.1:{_closed_port()}"
    argv = ["loadtest", "--url", url, "--model", "m", "--data", str(tmp_path / "data.npz"), "--out", str(out)]
    assert cli.main([*argv, "--trace", str(tmp_path / "trace.csv"), "--metrics-url", "http://127.0.0.1:1"]) == 2
    return capsys.readouterr().err.splitlines()[-1].replace(url, "URL")


def test_a_refused_trace_run_writes_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _refused_trace_run(tmp_path, out, capsys) == "quantserve: error: no Triton server answers at URL"
    assert not out.exists()  # machine.json was written before the server was asked


def test_a_refused_trace_run_leaves_a_folder_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "machine.json").write_text('{"model": "the machine of the earlier run"}\n')
    _refused_trace_run(tmp_path, out, capsys)
    assert [p.name for p in out.iterdir()] == ["machine.json"]
    assert (out / "machine.json").read_text() == '{"model": "the machine of the earlier run"}\n'


def test_top1_column_shows_a_taggers_token_agreement() -> None:
    """khmersm's segmenter (session 50): its drift record judges per-token agreement, the column read "–"."""
    report = _unlabelled_report()
    report.variants[1].drift = {"labels": {"kind": "token_classification", "token_agreement": 0.99933}}
    assert _top1_cells(report) == {"icl_fp32": "1.0000", "icl_int8": "0.9993"}
