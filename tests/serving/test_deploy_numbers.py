"""Deploy's numeric flags: a value that cannot be meant (a negative delay, a queue delay of hours, a million
instances, a number Triton's config field cannot hold) is one line naming the flag and value, and nothing is
written. A 10^12 µs delay deployed: the batcher held each request up to 11 days, and the server looked hung."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--max-queue-delay-us", "1000000000000"],
            "--max-queue-delay-us 1000000000000: above 10 s (10000000 µs); the dynamic batcher holds a request up "
            "to this long waiting for others to batch with, so a quiet server would look hung",
        ),
        (["--max-queue-delay-us", "-5"], "--max-queue-delay-us -5: below 0 µs (0: no waiting)"),
        (["--max-batch", "0", "--max-queue-delay-us", "-5"], "--max-queue-delay-us -5: below 0 µs (0: no waiting)"),
        (["--max-batch", "-1"], "--max-batch -1: below 0 (0: no batching)"),
        (
            ["--max-batch", "10000000000"],
            "--max-batch 10000000000: above 2147483647, the most Triton's max_batch_size holds",
        ),
        (
            ["--instances", "1000000"],
            "--instances 1000000: above 128; each instance is a copy of the model in memory (on the embedded "
            "target a process of its own), and a server asked for this many would not come up",
        ),
        (["--instances", "0"], "--instances 0: instance count must be ≥ 1"),
        (["--preferred-batch", "0,8"], "--preferred-batch 0,8: preferred batch sizes must be ≥ 1"),
        (["--max-queue-size", "-1"], "--max-queue-size -1: below 0 (0: unbounded)"),
        (
            ["--max-queue-size", "100000000000"],
            "--max-queue-size 100000000000: above 2147483647, the most Triton's max_queue_size holds",
        ),
        (["--queue-timeout-us", "-1"], "--queue-timeout-us -1: below 0 µs (0: never)"),
        (
            ["--queue-timeout-us", "100000000000000000000"],
            "--queue-timeout-us 100000000000000000000: above 1 hour (3600000000 µs); a client has long given up "
            "on a request queued that long (0: no timeout)",
        ),
        (["--live-versions", "0"], "--live-versions 0: below 1 (the newest version at least)"),
        (
            ["--live-versions", "100000000000", "--keep-versions", "0"],
            "--live-versions 100000000000: above 2147483647, the most Triton's num_versions holds",
        ),
    ],
)
def test_an_absurd_number_is_one_line_naming_flag_and_value_and_nothing_is_written(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], line: str
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", *flags]) == 2
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"
    assert not repo.exists()


def test_an_empty_preferred_batch_list_is_refused_not_replaced_by_the_default(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--preferred-batch ,` deployed the default sizes in silence."""
    with pytest.raises(SystemExit):
        main(
            ["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense", "--preferred-batch", ","]
        )
    assert "--preferred-batch: ',' names no batch size" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_the_largest_sensible_values_still_deploy(dense_build: Path, tmp_path: Path) -> None:
    flags = ["--max-queue-delay-us", "10000000", "--queue-timeout-us", "3600000000", "--max-queue-size", "1"]
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense", *flags]) == 0
