"""Version numbers only grow: a number once issued is never issued again for another model, even after its
version folder is removed (a failed deploy withdrawn, a folder deleted by hand), so a client or cache that saw
version N never gets a different model under N. The highest number issued is kept in the model folder."""

from __future__ import annotations

from pathlib import Path

from serving.deploy import deploy
from serving.repository_lock import VERSION_RECORD
from serving.versions import existing_versions, remove_version_folder
from serving.withdraw import withdraw


def test_a_withdrawn_versions_number_is_not_issued_again(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    failed = deploy(dense_build, repo, "dense", max_batch=64, prune=False)
    assert failed.version == 2
    withdraw(failed)
    assert existing_versions(repo / "dense") == [1]
    assert deploy(dense_build, repo, "dense").version == 3


def test_a_newest_folder_removed_by_hand_keeps_its_number(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    remove_version_folder(repo / "dense", 3)
    assert deploy(dense_build, repo, "dense").version == 4


def test_a_repository_without_the_record_numbers_from_its_folders(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "dense")
    (repo / "dense" / VERSION_RECORD).unlink()  # as a quantserve before the record left it
    assert deploy(dense_build, repo, "dense").version == 3
    (repo / "dense" / VERSION_RECORD).write_text("not a number")  # damaged: the folders still count
    assert deploy(dense_build, repo, "dense").version == 4
    assert (repo / "dense" / VERSION_RECORD).read_text().strip() == "4"


def test_withdrawing_the_only_version_still_removes_the_model_folder(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    withdraw(deploy(dense_build, repo, "fresh", prune=False))
    assert list(repo.iterdir()) == []
