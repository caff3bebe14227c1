"""`deploy --url`/`rollback --url` aimed at a `quantserve serve` of another repository are refused before anything
is written: that server reloaded its own copy of the model, and deploy said `live on …: 'N' versions 1`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.deploy import deploy
from serving.endpoints import ServedEndpoints, recorded
from serving.versions import rollback

HTTP_PORT = 18299  # only ever read from the record: nothing listens on it


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    return tmp_path / "run"


def serve_of(repo: Path) -> ServedEndpoints:
    """A live `quantserve serve` (this process stands in for it) of `repo`."""
    return ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", 18298, HTTP_PORT, 18297)


def refusal(url: str, served: Path, repo: Path) -> str:
    return (
        f"quantserve: error: {url}: serves repository {served} (quantserve serve, pid {os.getpid()}), not --repo "
        f"{repo}; it would load its own copy of the model: pass that repository as --repo, or the --url of the "
        f"server of {repo}\n"
    )


@pytest.mark.parametrize("url", [f"127.0.0.1:{HTTP_PORT}", f"http://localhost:{HTTP_PORT}"])
def test_deploy_to_a_server_of_another_repository_is_refused_and_writes_nothing(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    repo = tmp_path / "other"
    with recorded(serve_of(tmp_path / "served")):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--url", url]) == 2
    assert capsys.readouterr() == ("", refusal(url, tmp_path / "served", repo))
    assert not repo.exists()


def test_rollback_on_a_server_of_another_repository_is_refused(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, url = tmp_path / "other", f"127.0.0.1:{HTTP_PORT}"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "dense")
    config = (repo / "dense" / "config.pbtxt").read_bytes()
    with recorded(serve_of(tmp_path / "served")):
        assert main(["rollback", "--repo", str(repo), "--name", "dense", "--url", url]) == 2
    assert capsys.readouterr() == ("", refusal(url, tmp_path / "served", repo))
    assert (repo / "dense" / "config.pbtxt").read_bytes() == config
    assert rollback(repo, "dense") == 1


def test_a_server_of_the_same_repository_or_not_recorded_is_not_refused(tmp_path: Path) -> None:
    from serving.endpoints import check_serves_repository

    (tmp_path / "repo").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo")
    with recorded(serve_of(tmp_path / "repo")):
        check_serves_repository(f"127.0.0.1:{HTTP_PORT}", tmp_path / "link")  # the same folder, resolved
        check_serves_repository(f"127.0.0.1:{HTTP_PORT - 1}", tmp_path / "elsewhere")  # not a recorded serve
        check_serves_repository(f"10.1.2.3:{HTTP_PORT}", tmp_path / "elsewhere")  # another machine's port
    check_serves_repository(f"127.0.0.1:{HTTP_PORT}", tmp_path / "elsewhere")  # the serve has stopped
