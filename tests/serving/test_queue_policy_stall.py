"""Deploy says, in one line, that a queue policy stalls Triton 2.51's dynamic batcher (server#8870), and still writes
the policy when asked; without the flags it writes none and says nothing. README's hardening recipe had recommended
`--max-queue-size 64 --queue-timeout-us 100000`, which here refused 3–16 requests per 2 s at 1–4 clients with an
empty queue and cut goodput to about a third (measured in serving.queue_policy_stall; the real server's side in
tests/serving/test_overload.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main
from serving.model_config import QueuePolicy, parse_config
from serving.queue_policy_stall import TRITON_ISSUE, queue_policy_warning


def deploy_args(build: Path, repo: Path) -> list[str]:
    return ["deploy", str(build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--max-queue-size", "64", "--queue-timeout-us", "100000"], "--max-queue-size 64 --queue-timeout-us 100000"),
        (["--max-queue-size", "16"], "--max-queue-size 16"),
        (["--queue-timeout-us", "5000"], "--queue-timeout-us 5000"),
    ],
)
def test_a_queue_policy_is_written_with_one_warning_line(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    assert main([*deploy_args(dense_build, tmp_path / "repo"), *flags]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {named} writes a default_queue_policy, and on Triton 2.51")
    assert (
        TRITON_ISSUE in warnings[0]
        and "remove it (redeploy with --max-queue-size 0 --queue-timeout-us 0)" in warnings[0]
    )
    written = parse_config(tmp_path / "repo" / "dense" / "config.pbtxt")["dynamic_batching"]["default_queue_policy"]
    assert written  # what was asked is still written: a Triton with the fix serves it as meant


def test_no_queue_flags_write_no_policy_and_no_warning(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(deploy_args(dense_build, tmp_path / "repo")) == 0
    assert "warning" not in capsys.readouterr().err
    assert "default_queue_policy" not in parse_config(tmp_path / "repo" / "dense" / "config.pbtxt")["dynamic_batching"]
    assert queue_policy_warning(QueuePolicy()) is None
