"""`--gate NAME=BY` on optimize and evaluate: repeatable, a comma list, from a config file's table or the
environment as every other flag, into the drift budget (`DriftBudget.gates`)."""

from __future__ import annotations

import pytest

from quantserve.cli import _apply_defaults, build_parser
from quantserve.cli.commands.evaluate import _budget
from quantserve.cli.commands.optimize import build_options

OPTIMIZE = ["optimize", "m.onnx", "--calib", "c.npz", "--out", "out"]
EVALUATE = ["evaluate", "--models", "m", "--reference", "m@1", "--data", "d.npz", "--out", "o"]


def _args(argv: list[str], config: dict | None = None):  # type: ignore[no-untyped-def]
    parser = build_parser()
    _apply_defaults(parser, argv[0], config or {}, "q.toml", argv)
    return parser.parse_args(argv)


def test_optimize_gates_from_the_command_line_repeated_and_listed() -> None:
    args = _args([*OPTIMIZE, "--gate", "value=confidence,boxes=scores", "--gate", "landmarks=scores"])
    gates = build_options(args).budget.gates
    assert gates == (("value", "confidence"), ("boxes", "scores"), ("landmarks", "scores"))


def test_optimize_gates_from_a_config_file_table() -> None:
    args = _args(OPTIMIZE, {"optimize": {"gate": ["value=confidence"]}})
    assert build_options(args).budget.gates == (("value", "confidence"),)


def test_evaluate_gates_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTSERVE_GATE", "value=confidence")
    args = _args(EVALUATE)
    assert _budget(args).gates == (("value", "confidence"),)
