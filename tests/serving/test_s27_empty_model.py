"""An empty (0-byte) model.onnx in a version folder is named so, not as a config that does not match.

Before: ONNX parses 0 bytes as a model with no inputs, and `serve` said "config.pbtxt does not match version 2's
model.onnx: input 'x' is not an input of the model (its inputs: none); fix config.pbtxt", of a config that was fine.
Live, the versions served before keep serving (as they did)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_edited_config import FakeControl

from quantserve.errors import QuantserveError
from serving.config_check import config_mismatch
from serving.deploy import deploy
from serving.repository import prepare_repository
from serving.server import ServerOptions
from serving.supervisor import Supervisor


def test_a_start_names_the_empty_model_file(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    model = repo / "dense" / "1" / "model.onnx"
    model.write_bytes(b"")
    reason = f"has an empty version 1 model.onnx ({model}: 0 bytes)"
    assert config_mismatch(repo / "dense") == reason
    with pytest.raises(QuantserveError) as refused:
        prepare_repository(repo)
    assert str(refused.value) == f"{repo / 'dense'}: model 'dense' {reason}; deploy it or remove the folder"


def test_a_live_reload_keeps_the_served_version_and_names_the_empty_file(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy(dense_build, repo, "dense", max_batch=8)
    model = repo / "dense" / "2" / "model.onnx"
    model.write_bytes(b"")
    lines: list[str] = []
    supervisor = Supervisor(ServerOptions.on_free_ports(repo, model_control="explicit"), log=lines.append)
    control = FakeControl([1])
    supervisor._load("dense", control, None)
    assert control.loads == 0
    assert lines == [
        f"model 'dense' not reloaded, versions [1] keep serving: {repo / 'dense'} has an empty version 2 model.onnx "
        f"({model}: 0 bytes)"
    ]
