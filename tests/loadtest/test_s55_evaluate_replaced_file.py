"""`evaluate` says what `serve` warns of a served model file that is not the one deployed (session 55: a version's
model.onnx whose sha256 differs from its manifest's scored PASS, rc 0, with no word; only serve's log warned)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import MODEL_SHA256, Manifest, file_sha256
from quantserve.cli import main
from serving.deploy import deploy
from serving.endpoints import endpoints_of, recorded
from serving.server import TritonServer
from tests.serving.serving_models import make_build_dir

pytestmark = pytest.mark.e2e


def test_evaluate_notes_a_served_file_that_is_not_the_one_deployed(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer], capsys: pytest.CaptureFixture[str]
) -> None:
    build = make_build_dir(tmp_path / "build")
    manifest = Manifest.load(build)
    manifest.extra[MODEL_SHA256] = file_sha256(build / "model.onnx")
    manifest.save(build)
    repo = tmp_path / "repo"
    for name in ("ref", "m"):
        deploy(build, repo, name, max_batch=8)
    server = triton_server_factory(repo)
    served = repo / "m" / "1" / "model.onnx"
    served.write_bytes(served.read_bytes() + b"\n")  # loaded already: the server answers from the file it read
    data = tmp_path / "heldout.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32))
    argv = ["evaluate", "--url", server.grpc_url, "--models", "m", "--reference", "ref", "--data", str(data)]
    with recorded(endpoints_of(server)):  # as `quantserve serve` records the server it runs
        assert main([*argv, "--out", str(tmp_path / "eval"), "--batch-size", "8"]) == 0
    assert (
        "quantserve: note: model 'm': version 1: model.onnx is not the file deployed (its sha256 differs from "
        "1/manifest.json's); it serves what is on disk now: deploy the build again to serve what was verified\n"
    ) in capsys.readouterr().err
