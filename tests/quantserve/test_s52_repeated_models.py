"""A model named twice in `evaluate --models` (as in `loadtest --model`) is refused in one line before any request
(session 52): `evaluate --models m,m --reference m` scored m twice, exit 0, and its report said it compared m
against itself "as FP32" beside "No verdict"."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["evaluate", "--models", "m_int8,m_int8", "--reference", "m_fp32"],
            "--models names 'm_int8' more than once; name each once",
        ),
        (
            ["evaluate", "--models", "m_int8,m_fp32,m_int8", "--reference", "m_fp32"],
            "--models names 'm_int8' more than once; name each once",
        ),
        # loadtest's own check (session 30) names what the second run would replace
        (["loadtest", "--model", "m_int8,m_fp32,m_int8", "--duration", "1s"], "--model names 'm_int8' twice: its"),
    ],
)
def test_a_model_named_twice_is_refused_before_any_request(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    # port 9 (discard) on loopback: nothing answers there, so a request made would fail otherwise
    code = main([*argv, "--data", str(tmp_path / "d.npz"), "--out", str(out), "--url", "127.0.0.1:9"])
    assert code == 2
    assert said in capsys.readouterr().err
    assert not out.exists()
