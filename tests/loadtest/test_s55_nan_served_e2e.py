"""End to end: a tree ensemble taking NaN as "missing", built FP32 (its NaN input recorded), deployed and served by a
real tritonserver; infer, evaluate and loadtest's checks send rows with NaN, answered as ONNX Runtime answers them
in process. The same model deployed from a build that recorded none is refused NaN in one line (session 55)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.load_settings import LoadSettings
from loadtest.step_checks import check_model_ready
from optimizer.nan_inputs import NAN_INPUTS
from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.artifact import MANIFEST_NAME
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.server import TritonServer
from tests.optimizer.test_s55_nan_inputs import UNTIMED, missing_trees, rows_with_nan

pytestmark = pytest.mark.e2e

UNRECORDED = "; the served model's build did not record NaN as accepted for input 'x'"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    root = tmp_path_factory.mktemp("nan")
    data = rows_with_nan(root / "d.npz")
    optimize(OptimizeOptions(missing_trees(root / "t.onnx"), data, "fp32", "embedded", root / "build", speed=UNTIMED))
    deploy(root / "build", root / "repo", "trees")
    shutil.copytree(root / "build", root / "older")  # as built before NaN was recorded
    manifest = json.loads((root / "older" / MANIFEST_NAME).read_text())
    del manifest["extra"][NAN_INPUTS]
    (root / "older" / MANIFEST_NAME).write_text(json.dumps(manifest))
    deploy(root / "older", root / "repo", "older")
    return triton_server_factory(root / "repo"), root


def test_infer_and_evaluate_send_nan_as_the_build_accepted_it(
    served: tuple[TritonServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime as ort

    server, root = served
    data, out = root / "d.npz", root / "answers.npz"
    assert (
        main(["-q", "infer", "--url", server.grpc_url, "--model", "trees", "--data", str(data), "--out", str(out)]) == 0
    )
    session = ort.InferenceSession(str(root / "t.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(np.load(out)["y"], session.run(None, {"x": np.load(data)["x"]})[0])
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", "trees", "--reference", "trees"]
    assert main([*argv, "--data", str(data), "--out", str(root / "evaluated")]) == 0
    capsys.readouterr()
    assert main(["-q", "infer", "--url", server.grpc_url, "--model", "older", "--data", str(data)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{UNRECORDED} (optimize records it where the FP32 model answers NaN there finitely)")
    )


def test_loadtest_checks_take_nan_as_the_served_build_accepted_it(served: tuple[TritonServer, Path]) -> None:
    server, root = served
    check_model_ready(LoadSettings(server.grpc_url, "trees", root / "d.npz"))
    with pytest.raises(QuantserveError, match=UNRECORDED):
        check_model_ready(LoadSettings(server.grpc_url, "older", root / "d.npz"))
