"""A missing argument hid the missing required options (session 32, issue 11): `quantserve optimize` said only
"the following arguments are required: MODEL" (argparse, before the environment and a config file were read); the
user gave MODEL and was then told of --calib and --out. Every command's missing arguments and options are now said
in one line, each with where it may be given (an argument on the command line only).
"""

from __future__ import annotations

import argparse

import pytest

from quantserve import cli
from quantserve.cli.option_sources import relax_required

OPTIONS_ANYWHERE = "in the environment (QUANTSERVE_{}=…) or in a config file's [{}] table ({} = …)"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["optimize"],
            "optimize needs MODEL, --calib and --out: give MODEL on the command line, and each option there, "
            + OPTIONS_ANYWHERE.format("CALIB", "optimize", "calib"),
        ),
        (
            ["deploy"],
            "deploy needs BUILD_DIR and --name: give BUILD_DIR on the command line, and the option there, "
            + OPTIONS_ANYWHERE.format("NAME", "deploy", "name"),
        ),
        (
            ["tune"],
            "tune needs BUILD, --data, --slo-p99-ms, --name and --out: give BUILD on the command line, and each option "
            "there, " + OPTIONS_ANYWHERE.format("DATA", "tune", "data"),
        ),
        (
            ["tune", "--data", "d.npz", "--slo-p99-ms", "5", "--name", "n", "--out", "o"],
            "tune needs BUILD: give it on the command line",
        ),
        (["profile"], "profile needs BUILD: give it on the command line"),
        (
            ["optimize", "m.onnx"],
            "optimize needs --calib and --out: give each on the command line, "
            + OPTIONS_ANYWHERE.format("CALIB", "optimize", "calib"),
        ),
    ],
)
def test_every_missing_argument_and_option_is_named_in_one_line(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"


def test_options_from_the_environment_leave_only_the_argument_to_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_CALIB", "c.npz")
    monkeypatch.setenv("QUANTSERVE_OUT", "build/x")
    assert cli.main(["optimize"]) == 2
    assert capsys.readouterr().err == "quantserve: error: optimize needs MODEL: give it on the command line\n"


def test_the_usage_line_still_shows_the_argument_required() -> None:
    parser = cli.build_parser()
    relax_required(parser)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands["optimize"].format_usage().rstrip().endswith(" MODEL")
    assert commands["tune"].format_usage().rstrip().endswith(" BUILD [BUILD ...]")
