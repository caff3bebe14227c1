"""End to end: an `optimize --unbatched` build whose graph declares axis 0 dynamic but bakes 1 in (a Reshape to
[1, 32], as the Khmer segmenter khmersm's export did), deployed with the defaults and served by a real tritonserver.

Before: deploy wrote dims [-1, 32] for max_batch_size 0, so `infer` sent the whole file as one request (khmersm:
ONNX Runtime asked for 29 GB) and `evaluate` 64 rows (ORT's raw "Shape mismatch … {1,128,192} != {64,128,192}").
Now the config says one row a request (dims [1, 32]), and clients send that with their default flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest.harness import check_ready
from loadtest.load_settings import LoadSettings
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_config import parse_config
from serving.server import TritonServer

pytestmark = pytest.mark.e2e
WIDTH, CLASSES, ROWS = 32, 8, 40


def baked_model(path: Path) -> Path:
    """x [N, 32] → Reshape to [1, 32] (the batch of 1 baked in) → MatMul → Relu → y declared [N, 8]: one row runs,
    more fail in ONNX Runtime's Reshape."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array((rng.standard_normal((WIDTH, CLASSES)) / 6).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([1, WIDTH], np.int64), "one_row"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "one_row"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "baked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    root = tmp_path_factory.mktemp("baked")
    x = np.random.default_rng(1).standard_normal((ROWS, WIDTH)).astype(np.float32)
    np.savez(root / "baked.npz", x=x)
    options = OptimizeOptions(
        baked_model(root / "baked.onnx"),
        root / "baked.npz",
        "fp32",
        "embedded",
        root / "build",
        speed=SpeedSettings(enabled=False),
        unbatched=True,
    )
    optimize(options)
    deploy(root / "build", root / "repo", "baked")  # the defaults: max_batch_size 0
    return triton_server_factory(root / "repo"), root


def test_the_served_config_says_one_row_a_request(served: tuple[TritonServer, Path]) -> None:
    config = parse_config(served[1] / "repo" / "baked" / "config.pbtxt")
    assert int(config.get("max_batch_size", 0)) == 0
    assert [(t["name"], [int(d) for d in t["dims"]]) for t in config["input"]] == [("x", [1, WIDTH])]


def test_infer_with_default_flags_sends_one_row_a_request_and_answers_as_in_process(
    served: tuple[TritonServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime as ort

    server, root = served
    out = root / "answers.npz"
    argv = ["infer", "--url", server.grpc_url, "--model", "baked", "--data", str(root / "baked.npz"), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    session = ort.InferenceSession(str(root / "build" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.load(root / "baked.npz")["x"]
    expected = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(ROWS)])
    got = np.load(out)["y"]
    assert got.shape == (ROWS, CLASSES)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_evaluate_with_default_flags_succeeds(
    served: tuple[TritonServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate's default --batch-size 64 sent the 40 rows as one request, which the graph's Reshape refused."""
    server, root = served
    out = root / "evaluated"
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", "baked", "--reference", "baked"]
    assert main([*argv, "--data", str(root / "baked.npz"), "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / "accuracy.json").read_text())


def test_loadtest_refuses_requests_of_more_than_the_one_row(served: tuple[TritonServer, Path]) -> None:
    server, root = served
    data = root / "baked.npz"
    with pytest.raises(QuantserveError) as caught:
        check_ready(LoadSettings(server.grpc_url, "baked", data, request_batch=4))
    assert str(caught.value) == (
        "--request-batch: requests of 4 samples would send input 'x' as [4, 32], but model 'baked' takes [1, 32] "
        "(max_batch_size 0); Triton would refuse every one: pass --request-batch 1"
    )
    check_ready(LoadSettings(server.grpc_url, "baked", data, request_batch=1))


def test_redeploying_over_the_config_an_older_deploy_wrote_is_no_interface_change(
    served: tuple[TritonServer, Path], tmp_path: Path
) -> None:
    """An older deploy wrote dims [-1, 32]; the same build deployed again (now [1, 32]) was refused as "input 'x'
    dims [-1, 32] → [1, 32]"."""
    build, repo = served[1] / "build", tmp_path / "repo"
    deploy(build, repo, "baked")
    config = repo / "baked" / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: 1\n", "dims: -1\n", 1))  # the input's axis 0, as before
    assert [[int(d) for d in t["dims"]] for t in parse_config(config)["input"]] == [[-1, WIDTH]]
    assert deploy(build, repo, "baked").version == 2
    assert [[int(d) for d in t["dims"]] for t in parse_config(config)["input"]] == [[1, WIDTH]]


def test_profile_runs_an_unbatched_build_one_row_at_a_time(
    served: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`profile` ran 8 rows a run by default: ONNX Runtime's Reshape failed inside, an internal error (exit 3)."""
    build = served[1] / "build"
    argv = ["profile", str(build), "--repeats", "1", "--rounds", "1", "--out", str(tmp_path / "p")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "p" / "profile.json").read_text())["batch"] == 1
    capsys.readouterr()
    assert main([*argv, "--batch", "4"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: --batch 4: {build} is an --unbatched build (one row a request, as it was verified); "
        "profile it with --batch 1 (the default for it)\n"
    )
