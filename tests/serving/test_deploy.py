"""deploy: a Triton model repository written atomically, versions that increment, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from serving_models import make_build_dir
from tritonclient.grpc import model_config_pb2

import serving.deploy
from quantserve.errors import QuantserveError
from serving.deploy import STAGING_PREFIX, deploy, existing_versions


def test_deploy_writes_config_and_version(dense_build: Path, tmp_path: Path) -> None:
    result = deploy(dense_build, tmp_path / "repo", "dense", max_batch=16, max_queue_delay_us=300, instances=2)
    assert result.version == 1 and result.version_dir == tmp_path / "repo" / "dense" / "1"
    assert {"model.onnx", "model.py", "manifest.json", "deploy.json"} <= {p.name for p in result.version_dir.iterdir()}
    message = text_format.Parse(result.config_path.read_text(), model_config_pb2.ModelConfig())
    assert message.name == "dense" and message.backend == "python" and message.max_batch_size == 16
    assert [(t.name, list(t.dims)) for t in message.input] == [("x", [8])]
    assert [(t.name, list(t.dims)) for t in message.output] == [("probs", [4])]
    assert list(message.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]
    assert message.dynamic_batching.max_queue_delay_microseconds == 300
    assert message.instance_group[0].count == 2
    record = json.loads((result.version_dir / "deploy.json").read_text())
    assert record["source"] == str(dense_build.resolve()) and record["version"] == 1


def test_versions_increment_past_the_highest(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert deploy(dense_build, repo, "dense").version == 1
    (repo / "dense" / "7").mkdir()
    assert deploy(dense_build, repo, "dense", preferred=[8, 32]).version == 8
    assert existing_versions(repo / "dense") == [1, 7, 8]


def test_sequence_inputs_are_ragged_with_the_batching_mode(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build", "sequence")
    result = deploy(build, tmp_path / "repo", "seq", ragged_batching="pad")
    message = text_format.Parse(result.config_path.read_text(), model_config_pb2.ModelConfig())
    assert message.input[0].allow_ragged_batch and list(message.input[0].dims) == [-1, 4]
    assert message.parameters["ragged_batching"].string_value == "pad"


def test_failure_mid_copy_leaves_no_version(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    before = (repo / "dense" / "config.pbtxt").read_text()
    copied: list[Path] = []

    def copy_then_fail(source: Path, target: Path) -> None:
        if copied:
            raise OSError(28, "No space left on device")
        copied.append(target)
        target.write_bytes(source.read_bytes()[:10])  # a partial file

    monkeypatch.setattr(serving.deploy, "copy_file", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        deploy(dense_build, repo, "dense", max_batch=4)
    assert sorted(p.name for p in (repo / "dense").iterdir()) == ["1", "config.pbtxt"]
    assert (repo / "dense" / "config.pbtxt").read_text() == before


def test_failure_on_first_deploy_leaves_no_model(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(source: Path, target: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(serving.deploy, "copy_file", fail)
    with pytest.raises(OSError):
        deploy(dense_build, tmp_path / "repo", "dense")
    assert list((tmp_path / "repo").iterdir()) == []


KILLED_DEPLOY = """
import os, signal, sys
sys.path[:0] = [{root!r}, {tests!r}]
import serving.deploy
copy = serving.deploy.copy_file
def copy_then_die(source, target):
    copy(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
serving.deploy.copy_file = copy_then_die
serving.deploy.deploy({build!r}, {repo!r}, "dense")
"""


def test_process_killed_mid_deploy_leaves_no_version(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root, tests = Path(__file__).parents[2], Path(__file__).parent
    script = KILLED_DEPLOY.format(root=str(root), tests=str(tests), build=str(dense_build), repo=str(repo))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    leftovers = [p.name for p in (repo / "dense").iterdir()]
    assert existing_versions(repo / "dense") == []
    assert all(name.startswith(STAGING_PREFIX) for name in leftovers if name != "config.pbtxt")
    # The next deploy cleans the dead deploy's staging folder and takes version 1.
    assert deploy(dense_build, repo, "dense").version == 1
    assert not [p for p in (repo / "dense").iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_unwritable_repo_is_one_clear_error(dense_build: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QuantserveError, match="cannot create the model repository"):
        deploy(dense_build, blocker / "repo", "dense")


def test_read_only_repo_is_one_clear_error(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repo.chmod(0o555)
    # root may write anywhere; ask the same question the deploy asks, answered as for an unprivileged user
    monkeypatch.setattr(serving.deploy.os, "access", lambda path, mode: False)
    with pytest.raises(QuantserveError, match="model repository is not writable"):
        deploy(dense_build, repo, "dense")
    assert list(repo.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("../evil", "invalid model name"), ("", "invalid model name"), ("a/b", "invalid model name")],
)
def test_invalid_name_writes_nothing(dense_build: Path, tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(QuantserveError, match=message):
        deploy(dense_build, tmp_path / "repo", name)
    assert not (tmp_path / "repo").exists()


def test_missing_build_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="build folder not found"):
        deploy(tmp_path / "nope", tmp_path / "repo", "dense")
    assert not (tmp_path / "repo").exists()


def test_missing_model_file_writes_nothing(dense_build: Path, tmp_path: Path) -> None:
    (dense_build / "model.onnx").unlink()
    with pytest.raises(QuantserveError, match="files the deploy needs are missing"):
        deploy(dense_build, tmp_path / "repo", "dense")
    assert not (tmp_path / "repo").exists()


def test_bad_batching_options_write_nothing(dense_build: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"preferred batch sizes \[64\] exceed the max batch size 32"):
        deploy(dense_build, tmp_path / "repo", "dense", preferred=[8, 64])
    with pytest.raises(QuantserveError, match="instance count must be ≥ 1"):
        deploy(dense_build, tmp_path / "repo", "dense", instances=0)
    assert not (tmp_path / "repo").exists()
