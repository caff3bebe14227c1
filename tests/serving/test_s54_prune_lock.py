"""A deploy whose new version is in place but whose pruning gave up on the lock says so, and succeeds.

Before (session 53's probe, read from the code): the prune step took the model folder's lock after the new version
was renamed in; another process holding it past LOCK_WAIT_S made deploy fail with the lock's own words, "nothing was
changed", although the new version was deployed and a watching serve loaded it. A real process holds the lock here,
started the moment the new version is in place; the limits are shortened.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_s53_lock_wait import HOLD, WHAT

import serving.deploy as deploy_module
from quantserve.cli import main
from serving import repository_lock
from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from serving.versions import existing_versions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def held_after_install(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Once a deploy has renamed its version in and let go of the lock, another process takes it (for 6 s)."""
    monkeypatch.setattr(repository_lock, "LOCK_SAID_AFTER_S", 0.2, raising=False)
    monkeypatch.setattr(repository_lock, "LOCK_WAIT_S", 1.0, raising=False)
    holders: list[subprocess.Popen[str]] = []
    prune = deploy_module.prune_versions

    def held_then_pruned(model_dir: Path, keep: int) -> list[int]:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(model_dir), "run"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        return prune(model_dir, keep)

    monkeypatch.setattr(deploy_module, "prune_versions", held_then_pruned)
    yield
    for holder in holders:
        holder.kill()
        holder.wait()


def test_the_new_version_stays_deployed_and_the_old_ones_are_said_to_be_left(
    dense_build: Path, tmp_path: Path, held_after_install: None
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", prune=False)
    deploy(dense_build, repo, "dense", prune=False)
    result = deploy(dense_build, repo, "dense", policy=ServingPolicy(keep_versions=1))
    assert result.version == 3 and result.pruned == ()
    assert existing_versions(repo / "dense") == [1, 2, 3]
    assert result.unpruned.startswith(
        f"old versions of {repo / 'dense'} left in place (--keep-versions 1): gave up waiting for its lock after 1 s, "
        "held by pid "
    )
    assert result.unpruned.endswith(f" ({WHAT}); the next deploy removes them")
    assert "nothing was changed" not in result.unpruned


def test_the_cli_exits_0_naming_the_version_and_warning_of_the_folders_left(
    dense_build: Path, tmp_path: Path, held_after_install: None, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", prune=False)
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--keep-versions", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"as 'dense' version 2: {repo / 'dense' / '2'}" in out
    assert "warning: old versions of" in err and "left in place (--keep-versions 1)" in err
    assert existing_versions(repo / "dense") == [1, 2]
