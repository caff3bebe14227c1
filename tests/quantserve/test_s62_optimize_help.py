"""`quantserve optimize --help` shows the defaults of --precision and --target (session 62): it said neither, so a
reader could not tell that a bare `optimize` builds INT8 for the embedded target."""

from __future__ import annotations

import pytest

from quantserve import cli


def optimize_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(["optimize", "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_precision_and_target_defaults_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    words = optimize_help(capsys)
    words = words[words.index("options:") :]  # the options' help, not the usage line
    precision = words[words.index("--precision {") :]
    target = words[words.index("--target TARGET") :]
    assert "(default int8)" in precision[: precision.index("--target")]
    assert "default embedded)" in target[: target.index("--out")]
