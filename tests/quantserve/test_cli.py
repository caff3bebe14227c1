"""The CLI front door: options from the environment and a config file, user errors as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve import cli


def parsed(argv: list[str], config: dict | None = None) -> object:
    parser = cli.build_parser()
    cli._apply_defaults(parser, argv[0], config or {})
    return parser.parse_args(argv)


def test_environment_sets_an_option_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTSERVE_MAX_BATCH", "16")
    assert parsed(["deploy", "build/x", "--name", "x"]).max_batch == 16  # type: ignore[attr-defined]


def test_command_line_beats_environment_beats_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"deploy": {"max_batch": 8, "instances": 3}}
    monkeypatch.setenv("QUANTSERVE_MAX_BATCH", "16")
    args = parsed(["deploy", "build/x", "--name", "x"], config)
    assert (args.max_batch, args.instances) == (16, 3)  # type: ignore[attr-defined]
    args = parsed(["deploy", "build/x", "--name", "x", "--max-batch", "4"], config)
    assert args.max_batch == 4  # type: ignore[attr-defined]


def test_user_error_is_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["deploy", str(tmp_path / "missing"), "--repo", str(tmp_path / "repo"), "--name", "m"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("quantserve: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "repo" / "m").exists()


def test_unreadable_config_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "q.toml"
    bad.write_text("[deploy\n")
    assert cli.main(["--config", str(bad), "deploy", "b", "--name", "m"]) == 2
    assert "cannot read config file" in capsys.readouterr().err
