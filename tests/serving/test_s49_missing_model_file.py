"""A version folder without the file its backend loads is named, not waited on (session 48: a Python model's `1/`
with no model.py made serve wait out its startup timeout and advise '--startup-timeout'; Triton 2.51 had logged
"Failed to preinitialize Python stub: Python model file not found" at info level and waited on the model forever)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving.config_check import missing_model_file
from serving.deploy import deploy
from serving.model_states import stubs_not_started
from serving.repository import prepare_repository
from serving.server import TritonServer

STUB_LINE = (
    "I1205 13:17:01.118891 28736 pb_stub.cc:2105]  Failed to preinitialize Python stub: "
    "Python model file not found in '{path}'\n"
)


def _without(model_dir: Path, version: int, file_name: str) -> None:
    (model_dir / str(version) / file_name).unlink()


def test_a_python_version_without_model_py_is_named_before_the_start(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "x")
    assert missing_model_file(repo / "x") is None
    _without(repo / "x", 1, "model.py")
    problem = missing_model_file(repo / "x")
    assert problem == f"has no model.py in version 1 ({repo / 'x' / '1'}), the file its python backend loads"
    with pytest.raises(QuantserveError) as refused:
        prepare_repository(repo)
    assert str(refused.value) == f"{repo / 'x'}: model 'x' {problem}; deploy it or remove the folder"
    assert prepare_repository(repo, strict=False) == {"x": problem}  # a restart skips it


def test_only_the_versions_served_and_the_backends_known_are_judged(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "x")
    deploy(dense_build, repo, "x")
    _without(repo / "x", 1, "model.py")
    assert missing_model_file(repo / "x") is None  # latest 1 serves version 2 alone
    config = repo / "x" / "config.pbtxt"
    text = config.read_text()
    config.write_text(text.replace("latest {\n    num_versions: 1\n  }", "all {\n  }"))
    assert missing_model_file(repo / "x") == (
        f"has no model.py in version 1 ({repo / 'x' / '1'}), the file its python backend loads"
    )
    config.write_text(text.replace('backend: "python"', 'backend: "onnxruntime"'))
    _without(repo / "x", 2, "model.onnx")
    assert missing_model_file(repo / "x") == (
        f"has no model.onnx in version 2 ({repo / 'x' / '2'}), the file its onnxruntime backend loads"
    )
    config.write_text(text.replace('backend: "python"', 'backend: "dali"'))
    assert missing_model_file(repo / "x") is None  # not known here: Triton names it


def test_a_stub_that_could_not_start_is_read_from_the_log_by_its_model_folder() -> None:
    log = STUB_LINE.format(path="/r/x/1/model.py") + 'I1205 13:17:01 1 model_lifecycle.cc:472] "loading: y:1"\n'
    assert stubs_not_started(log) == {"x": "Python model file not found in '/r/x/1/model.py'"}
    assert stubs_not_started(log.replace("preinitialize", "initialize")) == {}


@pytest.mark.e2e
def test_a_start_past_the_check_stops_at_tritons_reason_not_the_timeout(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "x")
    _without(repo / "x", 1, "model.py")
    server = triton_server_factory(repo, start=False, startup_timeout_s=600.0)  # TritonServer alone: no check
    with pytest.raises(QuantserveError) as refused:
        server.start()
    assert str(refused.value).startswith(
        f"model 'x' failed to load: Python model file not found in '{repo / 'x' / '1' / 'model.py'}' (log: "
    )
