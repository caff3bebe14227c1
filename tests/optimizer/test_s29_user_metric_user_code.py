"""The user's `--metric` code cannot end or garble evaluate/optimize: a metric calling sys.exit(3) ended evaluate with
exit 3 and nothing printed (no accuracy.json); `"higher_is_better": "False"` (a string) was taken as higher-is-better;
a metric that printed put its text ahead of `evaluate --json`'s one JSON document on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer.user_metric import MetricError, UserMetric
from quantserve.errors import QuantserveError

OUTPUTS = {"logits": np.eye(3)[[0, 1, 2, 0]]}
LABELS = np.array([0, 1, 2, 1])

USER_CODE = """
import sys

def exits(outputs, labels):
    sys.exit(3)

def prints(outputs, labels):
    print("user metric says hello")
    return float((outputs["logits"].argmax(1) == labels).mean())
"""


def _metric(function: Any) -> UserMetric:
    return UserMetric("mine:score", function)


def _exit(code: object) -> Any:
    def function(outputs: object, labels: object) -> float:
        sys.exit(code)  # type: ignore[arg-type]

    return function


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (3, "--metric 'mine:score' raised SystemExit: 3"),
        ("done", "--metric 'mine:score' raised SystemExit: done"),
        (None, "--metric 'mine:score' raised SystemExit"),
    ],
)
def test_a_metric_calling_sys_exit_is_one_user_error_line(code: object, line: str) -> None:
    with pytest.raises(MetricError) as error:
        _metric(_exit(code)).score(OUTPUTS, LABELS)
    assert str(error.value) == line


def test_ctrl_c_in_the_metric_still_interrupts() -> None:
    def interrupted(outputs: object, labels: object) -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _metric(interrupted).score(OUTPUTS, LABELS)


@pytest.mark.parametrize("given", ["False", "false", 0, 1, None, [True]])
def test_a_higher_is_better_that_is_not_a_bool_is_refused(given: object) -> None:
    """bool("False") is True: the metric was judged the wrong way round, with no line."""
    metric = _metric(lambda outputs, labels: {"value": 0.25, "higher_is_better": given})
    with pytest.raises(MetricError) as error:
        metric.score(OUTPUTS, LABELS)
    assert str(error.value) == (
        f"--metric 'mine:score' returned higher_is_better {given!r}; expected True or False (a bool)"
    )


@pytest.mark.parametrize(("given", "higher"), [(False, False), (True, True), (np.bool_(False), False)])
def test_a_bool_higher_is_better_is_taken(given: object, higher: bool) -> None:
    metric = _metric(lambda outputs, labels: {"value": 0.25, "higher_is_better": given})
    assert metric.score(OUTPUTS, LABELS) == (0.25, higher)
    assert _metric(lambda outputs, labels: {"value": 0.25}).score(OUTPUTS, LABELS) == (0.25, True)


def test_what_the_metric_prints_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    def prints(outputs: object, labels: object) -> float:
        print("user metric says hello")
        return 0.5

    assert _metric(prints).score(OUTPUTS, LABELS) == (0.5, True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "user metric says hello\n"
    print("stdout is stdout again")
    assert capsys.readouterr().out == "stdout is stdout again\n"


def test_what_the_module_prints_at_import_goes_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s29_loud_metric.py").write_text("print('importing my metric')\ndef score(o, l):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "s29_loud_metric", raising=False)
    assert UserMetric.load("s29_loud_metric:score").score(OUTPUTS, LABELS) == (1.0, True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "importing my metric\n"


def test_a_module_calling_sys_exit_at_import_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "s29_exiting_metric.py").write_text("import sys\nsys.exit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(QuantserveError) as error:
        UserMetric.load("s29_exiting_metric:score")
    assert str(error.value) == "--metric 's29_exiting_metric:score': cannot import s29_exiting_metric (SystemExit: 4)"


def _evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, *flags: str) -> int:
    """`quantserve evaluate --metric SPEC` of fp32 and int8 as a server would answer them (the same logits)."""
    from loadtest import evaluator
    from quantserve.cli import main

    module = f"s29_cli_metric_{spec}"
    (tmp_path / f"{module}.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "held.npz"
    np.savez(data, x=np.zeros((4, 3), np.float32), labels=LABELS)
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda *args, **kwargs: dict(OUTPUTS))
    argv = ["evaluate", "--url", "127.0.0.1:1", "--models", "int8", "--reference", "fp32", "--data", str(data)]
    return main([*argv, "--out", str(tmp_path / "out"), "--metric", f"{module}:{spec}", *flags])


def test_evaluate_json_with_a_printing_metric_is_one_json_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(tmp_path, monkeypatch, "prints", "--json") == 0
    captured = capsys.readouterr()
    variants = json.loads(captured.out)["accuracy"]["variants"]
    assert [v["user_metric"]["value"] for v in variants] == [0.75, 0.75]
    assert captured.err.splitlines().count("user metric says hello") == 2  # fp32's and int8's scoring


def test_evaluate_with_a_metric_calling_sys_exit_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(tmp_path, monkeypatch, "exits") == 2
    assert capsys.readouterr().err.splitlines() == [
        "quantserve: error: --metric 's29_cli_metric_exits:exits' raised SystemExit: 3"
    ]


def test_optimize_with_a_metric_calling_sys_exit_exits_2_with_one_line(
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from quantserve.cli import main

    (tmp_path / "s29_opt_metric.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--skip-timing"]
    assert main([*argv, "--metric", "s29_opt_metric:exits"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "quantserve: error: --metric 's29_opt_metric:exits' raised SystemExit: 3"
    ]
    assert not (tmp_path / "o").exists()
