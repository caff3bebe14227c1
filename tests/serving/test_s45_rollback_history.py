"""A rollback's default target skips the versions rolled back from before (session 45): deploy 4, roll back to 3,
deploy 5 and roll back, and the default served 4 again, the version just found wanting (an INT8 build that had missed
its drift budget, warned of since session 44). Serving a version with --to takes it off the record."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving import endpoints
from serving.deploy import deploy
from serving.repository_lock import ROLLED_BACK_RECORD
from serving.versions import rollback, rolled_back_from, served_versions


def test_the_default_rollback_passes_over_a_version_rolled_back_from_before(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(4):
        deploy(dense_build, repo, "dense")
    assert rollback(repo, "dense") == 3 and rolled_back_from(repo / "dense") == [4]
    assert deploy(dense_build, repo, "dense").version == 5 and served_versions(repo / "dense") == [5]
    assert rollback(repo, "dense") == 3  # not 4: rolled back from before
    assert rolled_back_from(repo / "dense") == [4, 5]
    assert rollback(repo, "dense", to="4") == 4 and rolled_back_from(repo / "dense") == [5]  # chosen again by name
    assert rollback(repo, "dense") == 3


def test_rolling_forward_by_name_records_nothing_left_behind(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    assert rollback(repo, "dense", to="1") == 1 and rolled_back_from(repo / "dense") == [3]
    assert rollback(repo, "dense", to="2") == 2 and rolled_back_from(repo / "dense") == [3]  # 1 was left forward
    assert rollback(repo, "dense") == 1


def test_every_older_version_rolled_back_from_asks_for_one_by_name(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    # as rollbacks leave it where the versions they went to were pruned since (deploy --keep-versions)
    (repo / "dense" / ROLLED_BACK_RECORD).write_text("1\n2\n")
    config = (repo / "dense" / "config.pbtxt").read_bytes()
    with pytest.raises(QuantserveError, match=r"every version older than 3 \(1, 2\) was rolled back from before"):
        rollback(repo, "dense")
    assert (repo / "dense" / "config.pbtxt").read_bytes() == config  # nothing changed
    assert rollback(repo, "dense", to="2") == 2 and rolled_back_from(repo / "dense") == [1, 3]


def test_the_rollback_line_names_the_version_it_passed_over(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))  # no serve of this repository runs
    os.makedirs(tmp_path / "run")
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0
    deploy(dense_build, repo, "dense")
    capsys.readouterr()
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0
    out = capsys.readouterr().out
    assert (
        "config now names version 2" in out and "(skipped version 3: rolled back from before; --to 3 serves it)" in out
    )
