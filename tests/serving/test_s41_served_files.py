"""A served version whose model file is not the one deployed is said (session 41: the INT8 model.onnx copied over
the FP32 version was reloaded with no word, and evaluate scored "fp32" against INT8 at drift 0, PASS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import make_build_dir

from quantserve.artifact import MODEL_SHA256, Manifest, file_sha256
from serving.deploy import deploy
from serving.served_files import replaced_model_files


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build whose manifest records its model file's sha256, as optimize's do."""
    folder = make_build_dir(tmp_path_factory.mktemp("served_files"))
    manifest = Manifest.load(folder)
    manifest.extra[MODEL_SHA256] = file_sha256(folder / "model.onnx")
    manifest.save(folder)
    return folder


def test_a_replaced_model_file_is_named_and_an_untouched_one_is_not(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(build, repo, "m")
    deploy(build, repo, "m")
    assert replaced_model_files(repo / "m") == []
    (repo / "m" / "1" / "model.onnx").write_bytes(b"not served")  # version 1 is not served: not checked
    assert replaced_model_files(repo / "m") == []
    served = repo / "m" / "2" / "model.onnx"
    served.write_bytes(served.read_bytes() + b"\0")
    [line] = replaced_model_files(repo / "m")
    assert line.startswith("warning: model 'm' version 2: model.onnx is not the file deployed (its sha256 differs")
    assert replaced_model_files(tmp_path / "nothing") == []
