"""quantserve's own options after the command: `quantserve deploy BUILD --name m --quiet` was refused as
"unrecognized arguments: --quiet" (session 41), the option shown only in the top-level usage line."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import hoist_global_options, main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["deploy", "b", "--name", "m", "--quiet"], ["--quiet", "deploy", "b", "--name", "m"]),
        (["deploy", "-q", "b", "--config", "q.toml"], ["-q", "--config", "q.toml", "deploy", "b"]),
        (
            ["--config", "deploy", "deploy", "b", "--config=x.toml"],
            ["--config", "deploy", "--config=x.toml", "deploy", "b"],
        ),
        (["serve", "--", "-q"], ["serve", "--", "-q"]),
        (["deploy", "b", "--config"], ["deploy", "b", "--config"]),
        (["nonsense", "-q"], ["nonsense", "-q"]),
    ],
)
def test_options_of_quantserve_itself_move_before_the_command(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_quiet_after_the_command_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing"
    assert main(["deploy", str(missing), "--name", "m", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err and "build folder not found" in err


def test_an_empty_path_is_refused_from_the_command_line_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deploy --repo ""` (or `QUANTSERVE_REPO=`) deployed model versions into the current folder (session 41)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["deploy", "build", "--name", "m", "--repo", ""])
    assert refused.value.code == 2
    assert "argument --repo: an empty path (read as the current folder)" in capsys.readouterr().err
    monkeypatch.setenv("QUANTSERVE_REPO", "")
    assert main(["deploy", "build", "--name", "m"]) == 2
    assert "QUANTSERVE_REPO='': --repo: an empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
