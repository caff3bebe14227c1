"""The queue-policy warnings name what really removes a policy and where its settings came from.

Probed (session 61): `deploy … --max-queue-size 64 --queue-timeout-us 100000`, then a redeploy of the same name with no
queue flags, printed "warning: --max-queue-size 64 --queue-timeout-us 100000 writes a default_queue_policy", flags the
user never passed (deploy keeps a config's serving settings left out, by design), and serve's advice "redeploy without
--max-queue-size/--queue-timeout-us" kept the policy. `--max-queue-size 0 --queue-timeout-us 0` removes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main
from serving.model_config import parse_config
from serving.queue_policy_stall import REMOVE_POLICY, served_queue_policy_warning

QUEUE_FLAGS = ["--max-queue-size", "64", "--queue-timeout-us", "100000"]


def deploy_dense(build: Path, repo: Path, *flags: str) -> int:
    return main(["deploy", str(build), "--repo", str(repo), "--name", "dense", "--max-batch", "8", *flags])


def stall_warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "default_queue_policy" in line]


def policy(repo: Path) -> dict[str, object]:
    batching = parse_config(repo / "dense" / "config.pbtxt")["dynamic_batching"]
    return dict(batching.get("default_queue_policy", {}))


def test_a_redeploy_without_the_flags_says_the_policy_was_kept_from_the_config(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy_dense(dense_build, tmp_path / "repo", *QUEUE_FLAGS) == 0
    capsys.readouterr()
    assert deploy_dense(dense_build, tmp_path / "repo") == 0
    [warning] = stall_warnings(capsys)
    assert warning.startswith(
        "warning: --max-queue-size 64 --queue-timeout-us 100000 (kept from the config of the version before: a queue "
        "flag left out keeps its value) writes a default_queue_policy, and on Triton 2.51"
    )
    assert REMOVE_POLICY in warning


def test_a_flag_given_and_one_kept_are_told_apart(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy_dense(dense_build, tmp_path / "repo", *QUEUE_FLAGS) == 0
    capsys.readouterr()
    assert deploy_dense(dense_build, tmp_path / "repo", "--max-queue-size", "32") == 0
    [warning] = stall_warnings(capsys)
    assert warning.startswith(
        "warning: --max-queue-size 32 and --queue-timeout-us 100000 (kept from the config of the version before: a "
        "queue flag left out keeps its value) writes a default_queue_policy"
    )


def test_every_remedy_named_removes_the_policy(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    assert deploy_dense(dense_build, repo, *QUEUE_FLAGS) == 0
    [deploy_warning] = stall_warnings(capsys)
    serve_warning = served_queue_policy_warning(repo / "dense") or ""
    for warning in (deploy_warning, serve_warning):
        assert "without --max-queue-size" not in warning and "deploy without them" not in warning
        assert f"remove it ({REMOVE_POLICY})" in warning
    assert REMOVE_POLICY == "redeploy with --max-queue-size 0 --queue-timeout-us 0"
    assert deploy_dense(dense_build, repo) == 0  # what the old advice said: the policy stays
    assert policy(repo)["max_queue_size"] == 64
    capsys.readouterr()
    assert deploy_dense(dense_build, repo, "--max-queue-size", "0", "--queue-timeout-us", "0") == 0
    assert policy(repo) == {} and stall_warnings(capsys) == []
    assert served_queue_policy_warning(repo / "dense") is None


def test_the_remedy_removes_a_policy_edited_in_by_hand(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert deploy_dense(dense_build, repo) == 0
    config = repo / "dense" / "config.pbtxt"
    edited = "dynamic_batching {\n  default_queue_policy { allow_timeout_override: true }"
    config.write_text(config.read_text().replace("dynamic_batching {", edited, 1))
    assert REMOVE_POLICY in (served_queue_policy_warning(repo / "dense") or "")
    assert deploy_dense(dense_build, repo, "--max-queue-size", "0", "--queue-timeout-us", "0") == 0
    assert served_queue_policy_warning(repo / "dense") is None
