"""A deploy says which old version folders it removed (session 45): of six deploys of one name at once, one said
"deployed as version 1" and another removed version 1 a moment later (--keep-versions 5), without a word."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.versions import existing_versions


def test_the_deploy_that_removes_an_old_version_names_it(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))  # no serve of this repository runs
    os.makedirs(tmp_path / "run")
    repo = tmp_path / "repo"
    deploy = ["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--keep-versions", "3"]
    for _ in range(3):
        assert main(deploy) == 0
    assert "removed" not in capsys.readouterr().out
    assert main(deploy) == 0
    out = capsys.readouterr().out
    assert "removed version 1 of 'dense' (--keep-versions 3: the newest folders kept)" in out, out
    assert existing_versions(repo / "dense") == [2, 3, 4]
