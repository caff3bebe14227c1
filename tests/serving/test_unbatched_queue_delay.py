"""deploy of an `optimize --unbatched` build (max_batch_size 0) with --max-queue-delay-us: refused in one line, as
--preferred-batch on the same build is. Before, the delay was dropped without a word (no dynamic batcher is written
for max_batch_size 0). Left out, the default delay is no refusal: the flag's default is told from a given value."""

from __future__ import annotations

from pathlib import Path

import pytest
from unbatched_builds import unbatched_build

from quantserve.cli import main


@pytest.fixture(scope="module")
def gated_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unbatched_build(tmp_path_factory.mktemp("unbatched_delay"))


def test_a_queue_delay_given_for_an_unbatched_build_is_refused_in_one_line(
    gated_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", str(gated_build), "--repo", str(tmp_path / "repo"), "--name", "gated"]
    assert main([*argv, "--max-queue-delay-us", "100"]) == 2
    assert capsys.readouterr().err.strip() == (
        "quantserve: error: --max-queue-delay-us 100: max_batch_size is 0 (the build was made with optimize "
        "--unbatched), so no dynamic batcher holds requests and the delay would be dropped; leave it out"
    )
    assert not (tmp_path / "repo" / "gated").exists()
    assert main([*argv, "--max-queue-delay-us", "0"]) == 0  # no delay: nothing dropped
    assert main(argv) == 0  # left out: the default, not a value given


def test_a_queue_delay_with_max_batch_0_is_refused_and_the_default_kept_otherwise(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "tiny"]
    assert main([*argv, "--max-batch", "0", "--max-queue-delay-us", "250"]) == 2
    assert "--max-queue-delay-us 250: max_batch_size is 0 (--max-batch 0)" in capsys.readouterr().err
    assert main(argv) == 0
    assert "max_queue_delay_microseconds: 500" in (tmp_path / "repo" / "tiny" / "config.pbtxt").read_text()
