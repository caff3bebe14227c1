"""A new version deployed without the in-service flags keeps the live versions and queue bounds of the model's
config (session 41: `--live-versions 2` and a bounded queue were reset to 1 and unbounded in silence by the next
plain deploy, so the version kept live for a canary stopped being served)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from serving.model_config import parse_config
from serving.versions import rollback, served_versions


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build_dir(tmp_path_factory.mktemp("keeps"))


def test_live_versions_and_queue_bounds_are_kept_and_a_flag_changes_them(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    argv = ["deploy", str(build), "--repo", str(repo), "--name", "m"]
    assert main([*argv, "--live-versions", "2", "--max-queue-size", "8", "--queue-timeout-us", "5000"]) == 0
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    config = parse_config(repo / "m" / "config.pbtxt")
    assert int(config["version_policy"]["latest"]["num_versions"]) == 2
    queue = config["dynamic_batching"]["default_queue_policy"]
    assert int(queue["max_queue_size"]) == 8 and int(queue["default_timeout_microseconds"]) == 5000
    assert served_versions(repo / "m") == [1, 2]
    assert "--max-queue-size 8, --queue-timeout-us 5000, --live-versions 2" in out
    assert main([*argv, "--live-versions", "1", "--max-queue-size", "0", "--queue-timeout-us", "0"]) == 0
    config = parse_config(repo / "m" / "config.pbtxt")
    assert int(config["version_policy"]["latest"]["num_versions"]) == 1
    assert "default_queue_policy" not in config["dynamic_batching"]


def test_a_deploy_after_a_rollback_serves_the_new_version(build: Path, tmp_path: Path) -> None:
    """The rollback's pinned version is not a setting to keep: the version just deployed is served."""
    repo = tmp_path / "repo"
    argv = ["deploy", str(build), "--repo", str(repo), "--name", "m"]
    assert main(argv) == 0 and main(argv) == 0
    assert rollback(repo, "m") == 1 and served_versions(repo / "m") == [1]
    assert main(argv) == 0
    assert served_versions(repo / "m") == [3]
