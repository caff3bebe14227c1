"""A value the environment or a config file gave, refused by the command's own check, is named with where it came
from: `[serve] grpc_port = 70000` read "--grpc-port 70000 is not a port", a flag the user never typed (session 40)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main


def test_a_config_files_value_refused_names_the_file_table_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[serve]\ngrpc_port = 70000\n")
    assert main(["--config", str(config), "serve", "--repo", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"quantserve: error: --grpc-port 70000 is not a port (1–65535) (given by {config}: [serve] grpc_port = 70000)\n"
    )


def test_an_environment_value_refused_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_GRPC_PORT", "70000")
    assert main(["serve", "--repo", str(tmp_path / "repo")]) == 2
    assert capsys.readouterr().err.rstrip().endswith("(given by QUANTSERVE_GRPC_PORT=70000)")


def test_a_typed_flag_is_not_blamed_on_a_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[serve]\ngrpc_port = 8001\n")
    argv = ["--config", str(config), "serve", "--repo", str(tmp_path / "repo"), "--grpc-port", "70000"]
    assert main(argv) == 2
    assert "given by" not in capsys.readouterr().err
