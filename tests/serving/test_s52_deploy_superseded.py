"""A `deploy --url` whose version another deploy overtook before the server loaded it says so (session 52): two
deploys of one model at once each printed "live on …" and "deployed … version 18", exit 0, while the server served
only version 19, the other deploy's build."""

from __future__ import annotations

from pathlib import Path

import pytest

import quantserve.cli.commands.deploy as deploy_command
from quantserve.cli import main
from serving.deploy import deploy
from serving.versions import served_versions

URL = "127.0.0.1:9"  # never reached: the liveness check and make_live are replaced below


def test_a_version_overtaken_before_it_served_is_named_with_the_one_served(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"

    def make_live(url: str, repo_arg: Path, name: str) -> list[int]:
        deploy(dense_build, repo, name, max_batch=8)  # the other deploy, while this one waits on the server
        return served_versions(repo_arg / name)  # what the server then serves: the newest version

    monkeypatch.setattr(deploy_command, "make_live", make_live)
    monkeypatch.setattr(deploy_command, "check_server_answers", lambda url: None)
    argv = ["deploy", str(dense_build), "--repo", str(repo), "--name", "m", "--max-batch", "8", "--url", URL]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "deployed " in out and " as 'm' version 1: " in out
    assert err.strip() == (
        "warning: version 1 is not served: the server serves version 2, deployed meanwhile, in its place (the config's "
        "version policy names which); load-test or evaluate that version knowing which build it is"
    )


def test_a_version_served_says_nothing_more(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy_command, "make_live", lambda url, repo, name: served_versions(repo / name))
    monkeypatch.setattr(deploy_command, "check_server_answers", lambda url: None)
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "m", "--url", URL]) == 0
    assert "warning" not in capsys.readouterr().err
