"""`serve` prints deploy's queue-policy warning (Triton 2.51 stalls on any policy: server#8870) for each model it loads
or reloads with one, once per load, never every poll.

Probed: `dynamic_batching { default_queue_policy { max_queue_size: 2 } }` edited into a served model's config by hand
was reloaded with only "model 'slow' reloaded"; at 2 users p99 was 506 ms (the 0.5 s stall), at 32 users 4549 of
4755 requests failed "Exceeds maximum queue size". Only deploy's flags had been warned about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from serving.model_config import QueuePolicy
from serving.queue_policy_stall import TRITON_ISSUE, served_queue_policy_warning
from serving.server import TritonServer
from serving.supervisor import Supervisor

STALL = ", and on Triton 2.51 (the embedded server, NGC 24.10) any queue policy stalls the dynamic batcher 0.5 s"
REMEDY = "on this Triton remove it (redeploy with --max-queue-size 0 --queue-timeout-us 0) and bound the load"


def edit_in_policy(model_dir: Path, policy: str) -> None:
    """Add a default_queue_policy to a deployed config by hand, as the probe did."""
    config = model_dir / "config.pbtxt"
    config.write_text(config.read_text().replace("dynamic_batching {", f"dynamic_batching {{\n  {policy}", 1))


def warning_start(model: str, policy: str) -> str:
    """How serve's warning for `model` begins, naming the policy's fields that stall."""
    return f"warning: model '{model}' is served with default_queue_policy {{ {policy} }} from its config.pbtxt{STALL}"


@pytest.mark.parametrize(
    ("edited", "named"),
    [
        ("default_queue_policy { max_queue_size: 2 }", "max_queue_size: 2"),
        ("default_queue_policy { allow_timeout_override: true }", "allow_timeout_override: true"),
        (
            "default_queue_policy { default_timeout_microseconds: 100000 timeout_action: DELAY }",
            "default_timeout_microseconds: 100000",
        ),
    ],
)
def test_a_config_with_a_queue_policy_is_named_with_the_fields_that_stall(
    dense_build: Path, tmp_path: Path, edited: str, named: str
) -> None:
    deploy(dense_build, tmp_path / "repo", "dense", max_batch=8)
    assert served_queue_policy_warning(tmp_path / "repo" / "dense") is None
    edit_in_policy(tmp_path / "repo" / "dense", edited)
    warning = served_queue_policy_warning(tmp_path / "repo" / "dense")
    assert warning is not None and warning.startswith(warning_start("dense", named))
    assert TRITON_ISSUE in warning and REMEDY in warning


def test_a_policy_deploy_wrote_is_named_too_and_a_policy_of_no_bound_is_not(dense_build: Path, tmp_path: Path) -> None:
    deploy(dense_build, tmp_path / "repo", "q", max_batch=8, policy=ServingPolicy(QueuePolicy(16, 5000)))
    warning = served_queue_policy_warning(tmp_path / "repo" / "q") or ""
    assert warning.startswith(warning_start("q", "max_queue_size: 16 default_timeout_microseconds: 5000"))
    deploy(dense_build, tmp_path / "repo", "plain", max_batch=8)
    edit_in_policy(tmp_path / "repo" / "plain", "default_queue_policy { timeout_action: REJECT }")  # bounds nothing
    assert served_queue_policy_warning(tmp_path / "repo" / "plain") is None


def test_serve_warns_at_start_and_at_a_reload_with_a_policy_and_not_every_poll(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy(dense_build, repo, "queued", max_batch=8, policy=ServingPolicy(QueuePolicy(max_queue_size=4)))
    lines: list[str] = []
    server = triton_server_factory(repo, start=False, model_control="explicit", load_models=("*",))
    supervisor = Supervisor(server.options, log=lines.append)
    supervisor.server = server
    try:
        supervisor.start()
        assert [line for line in lines if line.startswith("warning:")] == [
            served_queue_policy_warning(repo / "queued")
        ], lines
        lines.clear()
        edit_in_policy(repo / "dense", "default_queue_policy { max_queue_size: 2 }")
        assert supervisor.reload_changed() == ["dense"]
        warning = served_queue_policy_warning(repo / "dense") or ""
        assert warning.startswith(warning_start("dense", "max_queue_size: 2"))
        assert lines == ["model 'dense' reloaded: versions [1] live", warning]
        assert supervisor.reload_changed() == [] and len(lines) == 2  # nothing changed: nothing said again
    finally:
        supervisor.stop()
