"""End to end: --unbatched builds whose answer length varies per request (NMS-style x [1, 20, 6] → det [K, 6]) or
is one scalar, served by a real tritonserver, through `evaluate` and `infer`.

Before: `evaluate` stopped with "output shape (2231, 6) differs from the reference's (2002, 6)" (no verdict), or,
with equal totals, compared rows of different requests silently; `infer` saved det with no record of whose rows
were whose and printed an argmax of box columns; a scalar output's build stopped with "cannot be joined along the
batch axis: its batches have shapes []"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.cli import main
from serving.deploy import deploy
from serving.server import TritonServer

pytestmark = pytest.mark.e2e
ROWS = 30


def _detector(path: Path, threshold: float) -> Path:
    """x [1, 20, 6] → det [K, 6]: the rows whose score (column 4) is above `threshold`, doubled."""
    nodes = [
        helper.make_node("Squeeze", ["x", "axis0"], ["boxes"]),
        helper.make_node("Gather", ["boxes", "column4"], ["scores"], axis=1),
        helper.make_node("Greater", ["scores", "threshold"], ["kept"]),
        helper.make_node("NonZero", ["kept"], ["where"]),
        helper.make_node("Squeeze", ["where", "axis0"], ["index"]),
        helper.make_node("Gather", ["boxes", "index"], ["chosen"], axis=0),
        helper.make_node("Mul", ["chosen", "two"], ["det"]),
    ]
    constants = {"axis0": np.array([0]), "column4": np.array(4), "threshold": np.float32(threshold), "two": 2.0}
    inits = [
        numpy_helper.from_array(np.asarray(v, np.float32 if k in ("threshold", "two") else np.int64), k)
        for k, v in constants.items()
    ]
    graph = helper.make_graph(
        nodes,
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 20, 6])],
        [helper.make_tensor_value_info("det", TensorProto.FLOAT, ["K", 6])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _scalar(path: Path) -> Path:
    """x [1, 8] → s [] (its sum): one scalar a request."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0)],
        "scalar",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _build(root: Path, model: Path, data: Path) -> Path:
    out = root / f"build_{model.stem}"
    optimize(OptimizeOptions(model, data, "fp32", "embedded", out, speed=SpeedSettings(enabled=False), unbatched=True))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    root = tmp_path_factory.mktemp("per_request")
    rng = np.random.default_rng(0)
    np.savez(root / "det.npz", x=rng.random((ROWS, 20, 6)).astype(np.float32))
    repo = root / "repo"
    for name, model, data in [
        ("det", _detector(root / "det.onnx", 0.5), "det.npz"),
        ("det45", _detector(root / "det45.onnx", 0.45), "det.npz"),
    ]:
        deploy(_build(root, model, root / data), repo, name)
    deploy(root / "build_det", repo, "det_copy")
    return triton_server_factory(repo), root


def _evaluate(server: TritonServer, root: Path, models: str, reference: str, data: str) -> tuple[int, dict]:
    out = root / f"evaluated_{models}"
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", models, "--reference", reference]
    code = main([*argv, "--data", str(root / data), "--out", str(out)])
    report = json.loads((out / "accuracy.json").read_text())
    return code, {v["model"]: v for v in report["variants"]}


def test_evaluate_compares_each_request_and_fails_the_variant_whose_detections_changed(
    served: tuple[TritonServer, Path],
) -> None:
    server, root = served
    code, variants = _evaluate(server, root, "det_copy,det45", "det", "det.npz")
    assert code == 1
    assert variants["det_copy"]["violations"] == [] and variants["det_copy"]["max_abs_diff"] == 0.0
    [line] = [v for v in variants["det45"]["violations"] if "shape differs" in v]
    assert line.startswith("output 'det': its shape differs from the reference's in ")
    assert f" of {ROWS} requests (request " in line


def test_infer_saves_the_rows_of_each_request_and_no_argmax(
    served: tuple[TritonServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, root = served
    out = root / "det_out.npz"
    assert (
        main(["infer", "--url", server.grpc_url, "--model", "det", "--data", str(root / "det.npz"), "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "argmax" not in printed and "det__rows" in printed
    saved, x = np.load(out), np.load(root / "det.npz")["x"]
    per_request = np.split(saved["det"], np.cumsum(saved["det__rows"])[:-1])
    assert len(per_request) == ROWS
    for got, boxes in zip(per_request, x, strict=True):
        np.testing.assert_allclose(got, 2 * boxes[boxes[:, 4] > 0.5])


def test_a_model_answering_one_scalar_a_request_builds_unbatched(tmp_path: Path) -> None:
    """The build's verification runs it request by request: the scalars are stacked one a sample, not refused."""
    np.savez(tmp_path / "scal.npz", x=np.random.default_rng(0).random((ROWS, 8)).astype(np.float32))
    build = _build(tmp_path, _scalar(tmp_path / "scal.onnx"), tmp_path / "scal.npz")
    assert (build / "model.onnx").is_file()
