"""deploy of an `optimize --unbatched` build: max_batch_size 0 and the full request shape without being asked;
a batch asked for refused in one line (it deployed max_batch_size 32 and dims [-1, 32] by default, which Triton
refused at load or every request failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from unbatched_builds import unbatched_build

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_config import parse_config


@pytest.fixture(scope="module")
def gated_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unbatched_build(tmp_path_factory.mktemp("unbatched"))


def test_an_unbatched_build_deploys_with_max_batch_size_0_and_the_request_shape(
    gated_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", str(gated_build), "--repo", str(tmp_path / "repo"), "--name", "gated"]) == 0
    config = parse_config(tmp_path / "repo" / "gated" / "config.pbtxt")
    assert int(config.get("max_batch_size", 0)) == 0 and "dynamic_batching" not in config
    assert [(t["name"], [int(d) for d in t["dims"]]) for t in config["input"]] == [("x", [1, 32])]
    assert [(t["name"], [int(d) for d in t["dims"]]) for t in config["output"]] == [("y", [1, 8])]


def test_a_batch_asked_for_an_unbatched_build_is_refused_in_one_line(gated_build: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError) as refused:
        deploy(gated_build, tmp_path / "repo", "gated", max_batch=8)
    assert str(refused.value) == (
        "model 'gated' was built with --unbatched (it takes one request at a time and was verified only so), so it "
        "cannot be served with --max-batch 8; deploy it with --max-batch 0 (the default for such a build)"
    )
    assert not (tmp_path / "repo" / "gated").exists()
    assert deploy(gated_build, tmp_path / "repo", "gated", max_batch=0).version == 1


def test_tune_refuses_an_unbatched_build_in_one_line(
    gated_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(gated_build.parent / "gated.npz")
    argv = ["tune", str(gated_build), "--data", data, "--slo-p99-ms", "10", "--name", "g", "--out", str(tmp_path)]
    assert main([*argv, "--repo", str(tmp_path / "repo")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"quantserve: error: {gated_build}: built with --unbatched, it is served one request at a time "
        "(max_batch_size 0), so tune has no batch size or queue delay to search; deploy it with 'quantserve deploy' "
        "(--instances N runs N requests at once)"
    )
