"""Deploys of one model at once: a failed `deploy --url` takes out only its own version, puts its config back only
while it is still the one it wrote, never removes a folder holding another deploy's version, and says what it did.

The interleavings are made deterministic: the other deploy runs inside the failing one's server wait.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import ModuleType

import pytest

import quantserve.cli.commands.deploy as deploy_command
import serving.deploy as deploy_module
import serving.withdraw as withdraw_module
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.repository_lock import LOCK_NAME
from serving.versions import existing_versions
from serving.withdraw import withdraw

URL = "127.0.0.1:9"  # never reached: the liveness check and make_live are replaced below


def deploy_url_failing_after(
    monkeypatch: pytest.MonkeyPatch, meanwhile: list[tuple[str, ...]], repo: Path, build: Path
) -> None:
    """Make `deploy --url`'s wait on the server run the given other deploys (args after BUILD), then fail."""

    def make_live(url: str, repo_arg: Path, name: str) -> None:
        for extra in meanwhile:
            deploy(build, repo, name, max_batch=int(extra[0]))
        raise QuantserveError(f"{url}: loading '{name}' failed (connection reset)")

    monkeypatch.setattr(deploy_command, "make_live", make_live)
    monkeypatch.setattr(deploy_command, "check_server_answers", lambda url: None)


def cli_deploy(build: Path, repo: Path, *flags: str) -> int:
    return main(["deploy", str(build), "--repo", str(repo), "--name", "m", *flags])


def test_a_failed_first_deploy_leaves_the_version_another_deploy_made_meanwhile(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    deploy_url_failing_after(monkeypatch, [("64",)], repo, dense_build)
    assert cli_deploy(dense_build, repo, "--url", URL) == 2
    err = capsys.readouterr().err
    config = repo / "m" / "config.pbtxt"
    assert err == (
        f"quantserve: error: {URL}: loading 'm' failed (connection reset); version 1 removed again; "
        f"{config} kept: version 2, deployed since, uses it\n"
    )
    assert existing_versions(repo / "m") == [2]
    assert "max_batch_size: 64" in config.read_text()


def test_a_failed_deploy_never_puts_an_old_config_over_a_newer_one(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "m", max_batch=4)  # version 1
    deploy_url_failing_after(monkeypatch, [("16",)], repo, dense_build)
    assert cli_deploy(dense_build, repo, "--max-batch", "8", "--url", URL) == 2  # version 2, withdrawn
    assert "version 2 removed again; " in capsys.readouterr().err
    assert existing_versions(repo / "m") == [1, 3]
    assert "max_batch_size: 16" in (repo / "m" / "config.pbtxt").read_text()  # version 3's, not version 1's


def test_the_config_comes_back_only_when_nothing_newer_uses_the_one_it_wrote(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = deploy(dense_build, repo, "m", max_batch=2)
    config_1 = first.config_path.read_bytes()
    second = deploy(dense_build, repo, "m", max_batch=4, prune=False)
    third = deploy(dense_build, repo, "m", max_batch=8, prune=False)
    config_3 = third.config_path.read_bytes()
    said = withdraw(second)  # an older deploy's withdrawal: version 3's config stays
    assert said == f"version 2 removed again; {second.config_path} kept: version 3, deployed since, uses it"
    assert third.config_path.read_bytes() == config_3
    # version 2's config (its deploy failed) is not the one to go back to: version 1's, from its record
    assert withdraw(third) == f"version 3 removed again; {third.config_path} rewritten from version 1's deploy.json"
    assert third.config_path.read_bytes() == config_1 and existing_versions(repo / "m") == [1]
    fourth = deploy(dense_build, repo, "m", max_batch=16, prune=False)  # 2 and 3 were issued: never again
    assert withdraw(fourth) == f"version 4 removed again, {repo / 'm'} is as before"
    assert third.config_path.read_bytes() == config_1


def test_withdrawals_in_turn_leave_no_config_without_a_version(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    a = deploy(dense_build, repo, "m", prune=False)
    b = deploy(dense_build, repo, "m", max_batch=64, prune=False)
    assert withdraw(a) == f"version 1 removed again; {a.config_path} kept: version 2, deployed since, uses it"
    assert withdraw(b) == (
        f"version 2 removed again; {b.config_path} removed; {b.model_dir} removed (nothing else was in it)"
    )
    assert list(repo.iterdir()) == []


def lock_is_held(model_dir: Path) -> bool:
    """Whether any open file description holds the model folder's lock (flock locks conflict across them)."""
    fd = os.open(model_dir / LOCK_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_the_lock_is_held_to_take_a_version_and_to_withdraw_it_never_while_copying(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    seen: dict[str, bool] = {}

    def spy(module: ModuleType, name: str) -> None:
        function = getattr(module, name)

        def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen.setdefault(name, lock_is_held(repo / "m"))
            return function(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    for module, name in [(deploy_module, "copy_file"), (deploy_module, "rename_to_next_version")]:
        spy(module, name)
    spy(withdraw_module, "remove_version_folder")
    withdraw(deploy(dense_build, repo, "m", prune=False))
    assert seen == {"copy_file": False, "rename_to_next_version": True, "remove_version_folder": True}
