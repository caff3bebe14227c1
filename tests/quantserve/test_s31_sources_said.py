"""What the quick-start probe found in this session's option rules: the help's usage line put the required options
in brackets with nothing saying they are required; an empty `QUANTSERVE_MODEL=` passed the required check; and a
load shape from the environment beside a typed flag was refused as if `--stages` had been typed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve import cli


def test_the_help_says_which_options_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["loadtest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out OUT" in text and text.count("(required: here, in the environment or in a config file)") == 3


def test_an_empty_environment_value_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_MODEL", "")
    assert cli.main(["loadtest", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("quantserve: error: loadtest needs --model: ")


def test_a_shape_from_the_environment_is_named_beside_a_typed_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    monkeypatch.setenv("QUANTSERVE_STAGES", "4:3s")
    argv = ["loadtest", "--model", "m", "--data", str(data), "--out", str(tmp_path / "o"), "--users", "8"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        "quantserve: error: --stages (QUANTSERVE_STAGES=4:3s) sets its own users and run time; drop --users, or "
        "--stages from QUANTSERVE_STAGES=4:3s\n"
    )
