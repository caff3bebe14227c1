"""A redeploy without --ragged-batching keeps the config's pad, as it keeps the other serving settings, and says so;
pad is checked again on the new build. Measured (session 43, probe d): a model deployed with pad went back to group on
a redeploy without the flag, and the "kept … serving settings" note did not mention it."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import make_build_dir
from test_ragged_pad_check import SEQUENCE_REFUSED, make_masked_build

from quantserve.cli import main
from serving.deploy import deploy
from serving.model_config import CONFIG_NAME, parse_config


def ragged(model_dir: Path) -> str:
    return str(parse_config(model_dir / CONFIG_NAME)["parameters"]["ragged_batching"]["string_value"])


def test_a_redeploy_keeps_pad_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, repo = make_masked_build(tmp_path / "build"), tmp_path / "repo"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "masked", "--ragged-batching", "pad"]) == 0
    capsys.readouterr()
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "masked"]) == 0
    assert "--ragged-batching pad" in capsys.readouterr().out.splitlines()[-1]
    assert ragged(repo / "masked") == "pad"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "masked", "--ragged-batching", "group"]) == 0
    assert "ragged" not in capsys.readouterr().out  # a flag changes it; group is not named as kept
    assert ragged(repo / "masked") == "group"


def test_a_kept_pad_is_checked_again_on_the_new_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, repo = make_build_dir(tmp_path / "build", "sequence"), tmp_path / "repo"
    deploy(build, repo, "seq", ragged_batching="pad", check_pad=False)  # as a config edited by hand would say
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "seq"]) == 2
    assert capsys.readouterr().err == SEQUENCE_REFUSED
    assert sorted(p.name for p in (repo / "seq").iterdir() if p.is_dir()) == ["1"]
