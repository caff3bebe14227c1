"""tune names a model whose versions changed in the user's repository while it searched, before deploying over them
(probe T, session 56: a deploy of version 4 during a search was followed by tune's version 5 with no word)."""

from __future__ import annotations

from pathlib import Path

from quantserve.cli.tune_winner import changed_meanwhile, served_versions


def _version(repo: Path, name: str, version: int) -> None:
    (repo / name / str(version)).mkdir(parents=True)


def test_a_version_deployed_during_the_search_is_named(tmp_path: Path) -> None:
    _version(tmp_path, "m", 1)
    before = served_versions(tmp_path, "m")
    assert before == [1]
    assert changed_meanwhile(tmp_path, "m", before) is None
    _version(tmp_path, "m", 4)
    words = changed_meanwhile(tmp_path, "m", before)
    assert words is not None
    assert "[1] -> [1, 4]" in words and "while tune searched" in words


def test_a_model_new_to_the_repository_and_one_removed(tmp_path: Path) -> None:
    assert served_versions(tmp_path, "m") == []
    assert changed_meanwhile(tmp_path, "m", []) is None
    _version(tmp_path, "m", 2)
    assert "none -> [2]" in (changed_meanwhile(tmp_path, "m", []) or "")
    assert "[2, 3] -> [2]" in (changed_meanwhile(tmp_path, "m", [2, 3]) or "")
