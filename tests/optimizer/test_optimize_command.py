from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.drift_budget import BudgetExceeded
from quantserve.cli import main
from quantserve.cli.commands import optimize as optimize_command
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

USER_METRIC = """
import numpy as np

def accuracy(outputs, labels):
    return float(np.mean(outputs["logits"].argmax(axis=1) == labels))

def error_rate(outputs, labels):
    return {"value": float(np.mean(outputs["logits"].argmax(axis=1) != labels)), "higher_is_better": False}

def broken(outputs, labels):
    return "high"
"""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quantserve")
    optimize_command.register(parser.add_subparsers())
    return parser.parse_args(["optimize", *argv])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_optimize_prints_tables_and_writes_the_build(tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "build" / "tiny"
    args = _parse([str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--method", "percentile"])
    args.skip_timing = True  # unit tests are never timed
    assert args.func(args) == 0
    captured = capsys.readouterr()
    printed = captured.out
    for text in ("calibrate", "percentile", "nodes 6 → 5", "top1_agreement", "budget holds"):
        assert text in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"][2]["method"] == "percentile"
    assert manifest["verification"]["outputs"]["logits"]["kind"] == "classification"
    assert manifest["verification"]["holds"] is True and manifest["verification"]["enforced"] is True
    # 268 of the 400 rows held out: every one agreeing shows the 0.99 budget, and nothing is noted
    assert manifest["verification"]["samples"] == 268 and manifest["verification"]["thin_evidence"] == []
    assert manifest["verification"]["evidence_short"] == []
    # but that the tiny model's random weights answer its random labels at chance: they are not its truth (s55)
    notes = [line for line in captured.err.splitlines() if "note" in line]
    assert [note for note in notes if "at or below chance (1/10 = 0.1000)" not in note] == [], notes


def test_too_few_held_out_rows_are_refused_before_calibrating(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    """40 rows hold out 8: no agreement rate on them can show 0.99, so INT8 is refused before any calibration,
    nothing written; --allow-thin-evidence judges the rate seen and says how far it can be trusted."""
    import make_tiny_models

    calib = make_tiny_models.write_digits_like_npz(tmp_path / "small.npz", samples=40)
    out = tmp_path / "build" / "tiny"
    args = _parse([str(tiny_onnx), "--calib", str(calib), "--out", str(out)])
    args.skip_timing = True
    with pytest.raises(BudgetExceeded) as refused:
        args.func(args)
    assert str(refused.value).startswith(
        "too few held-out rows to show the drift budget: output 'logits': top-1 agreement ≥ 0.99 needs at least "
        "268 held-out rows (95 % lower bound, every row agreeing), 8 given; nothing written: pass --eval"
    )
    assert not out.exists() and not (tmp_path / "calib-cache").exists()  # refused before calibrating
    lowered = _parse([str(tiny_onnx), "--calib", str(calib), "--out", str(out), "--min-top1-agreement", "0.6"])
    lowered.skip_timing = True
    assert lowered.func(lowered) == 0  # 8 rows that all agree show ≥ 0.75: a budget of 0.6 can be judged
    capsys.readouterr()
    allowed = _parse([str(tiny_onnx), "--calib", str(calib), "--out", str(out), "--allow-thin-evidence"])
    allowed.skip_timing = True
    assert allowed.func(allowed) == 0
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    (thin,) = verification["thin_evidence"]
    assert thin["rows"] == 8 < thin["rows_needed"] and verification["evidence_short"][0]["rows_needed"] == 268
    err = capsys.readouterr().err
    assert "quantserve: note: output 'logits': top-1 agreement 1 over 8 held-out rows shows only" in err


def test_unknown_target_is_one_line(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    args = _parse([str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--target", "fpga"])
    with pytest.raises(QuantserveError, match="unknown target 'fpga'; choose one of: embedded, onnxruntime, tensorrt"):
        args.func(args)
    assert not (tmp_path / "o").exists()


def test_help_lists_the_registered_targets(capsys: pytest.CaptureFixture[str]) -> None:
    from optimizer.targets import target_names

    with pytest.raises(SystemExit):
        _parse(["--help"])
    assert f"engine target ({', '.join(target_names())}; default embedded)" in " ".join(capsys.readouterr().out.split())


def test_budget_missed_exits_1_and_writes_nothing(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build" / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--skip-timing"]
    assert main([*argv, "--output-kind", "logits=dense", "--min-channel-correlation", "1.0"]) == 1
    # the last line: a busy machine's run past 30 s says "quantserve: optimize: still running (30s): …" first
    *before, err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("quantserve: optimize: still running (") for line in before), before
    # a correlation of 1.0 holds only with every compute node FP32: that is no INT8 model, and the line says so
    assert err.startswith("quantserve: error: no INT8 model holds the drift budget: with its compute nodes in INT8")
    assert "output 'logits' (dense): worst channel correlation" in err and "< budget 1)" in err
    assert not out.exists() and _leftovers(out.parent) == []


def test_keep_failing_ships_with_the_failure_recorded(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--skip-timing"]
    assert main([*argv, "--output-kind", "logits=dense", "--min-channel-correlation", "1.0", "--keep-failing"]) == 0
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    assert verification["holds"] is False and verification["enforced"] is False
    assert verification["budget"]["min_channel_correlation"] == 1.0
    assert verification["violations"][0]["metric"] == "channel_correlation_worst"


def test_slower_int8_is_refused_and_allow_slower_ships(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--min-speedup", "1000"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "below --min-speedup 1000; deploy fp32 (or pass --allow-slower); its drift is within the budget" in err
    assert "INT8 is " in err
    assert not out.exists()
    assert main([*argv, "--allow-slower"]) == 0
    speed = json.loads((out / "manifest.json").read_text())["verification"]["speed"]
    assert speed["fp32_ms"] > 0 and speed["int8_ms"] > 0 and speed["min_speedup"] == 1000.0
    assert speed["holds"] is False and speed["enforced"] is False and speed["cpu"]


def test_user_metric_side_by_side_and_budgeted(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_task_metric.py").write_text(USER_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--skip-timing"]
    assert main([*argv, "--metric", "my_task_metric:error_rate"]) == 0
    metric = json.loads((out / "manifest.json").read_text())["verification"]["metric"]
    assert metric["spec"] == "my_task_metric:error_rate" and metric["higher_is_better"] is False
    assert 0.0 <= metric["fp32"] <= 1.0 and 0.0 <= metric["int8"] <= 1.0
    assert metric["max_relative_drop"] == 0.01


FLOAT_TRUTH_METRIC = """
import numpy as np

def logit_error(outputs, labels):
    assert labels.dtype.kind == "f", labels.dtype  # the float truth itself, not class ids
    return {"value": float(np.abs(outputs["logits"] - labels).mean()), "higher_is_better": False}
"""


def test_float_truth_is_scored_by_the_users_metric(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Float truth (regression targets, keypoints) was refused at load: it had to be scaled to integers by hand."""
    import onnxruntime as ort

    from quantserve.data import load_npz

    data = load_npz(calib_npz)
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    logits = session.run(None, data.arrays)[0]
    truth = (logits + np.random.default_rng(0).normal(0, 1.0, logits.shape)).astype(np.float32)
    calib = TensorData(data.arrays, None, truth).save(tmp_path / "float_truth.npz")
    (tmp_path / "float_truth_metric.py").write_text(FLOAT_TRUTH_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib), "--out", str(out), "--skip-timing"]
    argv += ["--output-kind", "logits=classification"]  # with no class ids, the logits would be judged a dense map
    assert main([*argv, "--metric", "float_truth_metric:logit_error", "--max-metric-drop", "1"]) == 0
    metric = json.loads((out / "manifest.json").read_text())["verification"]["metric"]
    assert metric["higher_is_better"] is False and 0.6 < metric["fp32"] < 1.0  # E|noise| = 0.8 for FP32
    assert metric["int8"] > 0 and metric["max_relative_drop"] == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "--metric 'no_colon': expected package.module:function"),
        ("no_such_module_xyz:f", "--metric 'no_such_module_xyz:f': cannot import no_such_module_xyz"),
        ("my_task_metric:missing", "--metric 'my_task_metric:missing': my_task_metric has no function 'missing'"),
        ("my_task_metric:broken", "--metric 'my_task_metric:broken' returned 'high'; expected a finite number"),
    ],
)
def test_bad_metric_is_one_line(
    spec: str,
    message: str,
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "my_task_metric.py").write_text(USER_METRIC)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--skip-timing"]
    assert main([*argv, "--metric", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not (tmp_path / "o").exists()


def test_labels_that_cannot_be_scored_are_refused_before_any_work(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """String labels made the output judge as `dense` and the accuracy check silently never ran."""
    from quantserve.data import load_npz

    data = load_npz(calib_npz)
    data.labels = np.array([f"class {i}" for i in data.labels])  # type: ignore[union-attr]
    calib = data.save(tmp_path / "string_labels.npz")
    import optimizer.pipeline

    def no_work(*_: object) -> None:
        raise AssertionError("optimize ran past its data check")

    monkeypatch.setattr(optimizer.pipeline, "run_atomically", no_work)
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib), "--out", str(tmp_path / "o"), "--skip-timing"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {calib}: array 'labels' has dtype {data.labels.dtype}; labels must be integer class ids "
        "(e.g. int64), one row per sample (per-token ids, or any integer truth for a --metric; float truth such as "
        "keypoints in pixels is read only with a --metric, which scores it)\n"
    )
    assert not (tmp_path / "o").exists()


def test_bad_output_kind_is_one_line(tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys) -> None:
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o")]
    assert main([*argv, "--output-kind", "logits=blob"]) == 2
    assert "--output-kind 'logits=blob': expected NAME=KIND with KIND one of classification," in capsys.readouterr().err
    assert main([*argv, "--output-kind", "nope=dense", "--skip-timing"]) == 2
    assert "--output-kind nope=dense: no output 'nope' (outputs: logits)" in capsys.readouterr().err


def test_a_path_the_system_refuses_is_one_line_naming_it(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError about a file (here `--out` under a regular file; elsewhere a read-only folder, a full disk) is a
    user error: one line with the path and the system's reason, exit 2, no traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--precision", "fp32", "--skip-timing"]
    code = main([*argv, "--out", str(blocker / "build")])
    assert code == 2
    assert capsys.readouterr().err == f"quantserve: error: {blocker}: file exists\n"
