"""A model that does not batch, with rank-0 inputs and outputs, deployed and served (session 59, swift-f0's
`fmin`/`fmax`): deploy refused it ("give the model's graph an Unsqueeze … and build it again"), a graph its user
cannot edit. Deploy now serves those tensors as dims [1] through a wrapped copy of the model file, and the client
takes and answers them in the model's own rank 0, so answers equal ONNX Runtime's on the build's own file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from quantserve.artifact import (
    BATCHING,
    MODEL_SHA256,
    NO_BATCHING,
    REQUESTS,
    WHOLE_SAMPLES,
    Manifest,
    TensorSpec,
    file_sha256,
)
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.config_check import config_mismatch
from serving.deploy import deploy
from serving.model_config import parse_config
from serving.reshaped import as_model_shape, as_served, model_spec, reshaped_tensors
from serving.scalar_tensors import SCALAR_PARAMETER, WRAPPED, write_wrapped_model
from serving.server import TritonServer

WIDTH, ROWS = 16, 6
INPUTS = [TensorSpec("x", "float32", (1, WIDTH)), TensorSpec("lo", "float32", ()), TensorSpec("hi", "float32", ())]
OUTPUTS = [
    TensorSpec("y", "float32", (1, WIDTH)),
    TensorSpec("peak", "float32", ()),
    TensorSpec("spread", "float32", ()),
]


def clip_model(path: Path) -> Path:
    """y = clip(x, lo, hi) [1, 16]; peak = max(y) and spread = |hi − lo| rank 0, the latter by an If whose branches
    read `lo` and `hi` from the outer graph."""
    branches = [
        helper.make_graph(
            [helper.make_node("Sub", [a, b], [f"d_{a}"])],
            f"branch_{a}",
            [],
            [helper.make_tensor_value_info(f"d_{a}", TensorProto.FLOAT, [])],
        )
        for a, b in (("hi", "lo"), ("lo", "hi"))
    ]
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["y"]),
        helper.make_node("ReduceMax", ["y"], ["peak"], keepdims=0),
        helper.make_node("Greater", ["hi", "lo"], ["ordered"]),
        helper.make_node("If", ["ordered"], ["spread"], then_branch=branches[0], else_branch=branches[1]),
    ]
    values = [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)) for t in INPUTS + OUTPUTS]
    graph = helper.make_graph(nodes, "clip", values[:3], values[3:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def clip_build(directory: Path, target: str = "embedded") -> Path:
    """A folder as `optimize --unbatched --precision fp32` leaves it, its data (one axis more: whole samples)
    beside it as `directory/data.npz`."""
    directory.mkdir(parents=True, exist_ok=True)
    model = clip_model(directory / "model.onnx")
    extra = {BATCHING: NO_BATCHING, REQUESTS: WHOLE_SAMPLES, MODEL_SHA256: file_sha256(model)}
    Manifest("clip", INPUTS, OUTPUTS, target=target, files={"model": model.name}, extra=extra).save(directory)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 1, WIDTH)).astype(np.float32)
    lo, hi = rng.uniform(-1, 0, ROWS).astype(np.float32), rng.uniform(0, 1, ROWS).astype(np.float32)
    hi[0], lo[0] = lo[0], hi[0]  # the If's other branch
    np.savez(directory / "data.npz", lo=lo, hi=hi, x=x)  # a scalar first: requests are counted by it
    return directory


def ort_answers(model: Path, data: Path) -> dict[str, np.ndarray]:
    """Each row run alone through ONNX Runtime, as the model has it: lo/hi rank 0."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = dict(np.load(data))
    rows = [session.run(None, {k: np.asarray(v[i]) for k, v in feeds.items()}) for i in range(ROWS)]
    return {t.name: np.stack([row[i] for row in rows]) for i, t in enumerate(OUTPUTS)}


def test_the_wrapped_model_answers_the_original_in_shape_1(tmp_path: Path) -> None:
    import onnxruntime as ort

    build = clip_build(tmp_path / "build")
    wrapped = tmp_path / "wrapped.onnx"
    write_wrapped_model(build / "model.onnx", wrapped, ["lo", "hi"], ["peak", "spread"])
    onnx.checker.check_model(onnx.load(str(wrapped)), full_check=True)
    session = ort.InferenceSession(str(wrapped), providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in session.get_inputs()} == {"x": [1, WIDTH], "lo": [1], "hi": [1]}
    assert {o.name: o.shape for o in session.get_outputs()} == {"y": [1, WIDTH], "peak": [1], "spread": [1]}
    data = dict(np.load(build / "data.npz"))
    expected = ort_answers(build / "model.onnx", build / "data.npz")
    for i in range(ROWS):
        got = session.run(None, {"x": data["x"][i], "lo": data["lo"][i : i + 1], "hi": data["hi"][i : i + 1]})
        for j, name in enumerate(("y", "peak", "spread")):
            np.testing.assert_array_equal(got[j], np.reshape(expected[name][i], got[j].shape))


@pytest.mark.parametrize("target", ["embedded", "onnxruntime"])
def test_deploy_serves_scalars_as_dims_1_and_keeps_the_build_and_its_checks(tmp_path: Path, target: str) -> None:
    """Deploy refused: "tensor 'lo' is a scalar (rank 0) … give the model's graph an Unsqueeze"."""
    build = clip_build(tmp_path / "build", target)
    before = file_sha256(build / "model.onnx")
    deployed = deploy(build, tmp_path / "repo", "clip")
    config = parse_config(deployed.config_path)
    assert int(config.get("max_batch_size", 0)) == 0
    dims = {t["name"]: [int(d) for d in t["dims"]] for t in [*config["input"], *config["output"]]}
    assert dims == {"x": [1, WIDTH], "lo": [1], "hi": [1], "y": [1, WIDTH], "peak": [1], "spread": [1]}
    assert config["parameters"][SCALAR_PARAMETER]["string_value"] == '["lo","hi","peak","spread"]'
    assert file_sha256(build / "model.onnx") == before  # the build's own file untouched
    served = Manifest.load(deployed.version_dir)
    assert served.extra[MODEL_SHA256] == file_sha256(deployed.version_dir / "model.onnx") != before
    assert served.extra[WRAPPED] == {
        "inputs": ["lo", "hi"],
        "outputs": ["peak", "spread"],
        "build_model_sha256": before,
    }
    assert config_mismatch(deployed.model_dir) is None  # serve's check of the config against the served file
    from serving.served_files import replaced_model_files

    assert replaced_model_files(deployed.model_dir) == []  # serve's sha256 check of the served file
    again = deploy(build, tmp_path / "repo", "clip")  # the same interface: no --allow-interface-change needed
    assert again.version == 2 and parse_config(again.config_path)["input"] == config["input"]


def test_a_tensorrt_build_with_scalars_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "model.plan").write_bytes(b"engine")
    extra = {BATCHING: NO_BATCHING, "tensorrt": {"max_batch": 1}}
    Manifest("clip", INPUTS, OUTPUTS, target="tensorrt", files={"model": "model.plan"}, extra=extra).save(build)
    with pytest.raises(QuantserveError, match=r"^tensor 'lo' is a scalar \(rank 0\).*this build's target is tensorrt"):
        deploy(build, tmp_path / "repo", "clip")
    assert not (tmp_path / "repo").exists()


def test_the_client_sends_and_answers_wrapped_scalars_in_the_models_rank_0() -> None:
    config = {"max_batch_size": 0, "parameters": {SCALAR_PARAMETER: {"string_value": '["lo","peak"]'}}}
    reshapes = reshaped_tensors(config)
    assert as_served("lo", np.float32(0.5), reshapes).shape == (1,)  # a data row's numpy scalar
    assert as_served("lo", np.array(0.5, np.float32), reshapes).shape == (1,)
    assert as_served("lo", np.array([0.5], np.float32), reshapes).shape == (1,)  # sent as served already
    assert as_served("x", np.zeros((1, WIDTH)), reshapes).shape == (1, WIDTH)
    assert as_model_shape("peak", np.array([2.0], np.float32), reshapes).shape == ()
    assert model_spec(TensorSpec("lo", "float32", (1,)), reshapes).shape == ()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    build = clip_build(tmp_path_factory.mktemp("scalars") / "build")
    deploy(build, build.parent / "repo", "clip")  # max_batch_size 0: an --unbatched build
    return triton_server_factory(build.parent / "repo"), build


@pytest.mark.e2e
def test_the_runner_takes_and_answers_the_models_scalars_as_onnxruntime_does(
    served: tuple[TritonServer, Path],
) -> None:
    from serving.triton_runner import TritonRunner

    server, build = served
    expected = ort_answers(build / "model.onnx", build / "data.npz")
    data = dict(np.load(build / "data.npz"))
    with TritonRunner(server.grpc_url, "clip") as runner:
        assert {t.name: t.shape for t in runner.input_specs()} == {t.name: t.shape for t in INPUTS}
        for i in range(ROWS):
            got = runner.infer({k: v[i] for k, v in data.items()})  # lo, hi: numpy scalars, as a data row gives them
            for name, want in expected.items():
                assert got[name].shape == want[i].shape
                np.testing.assert_array_equal(got[name], want[i])


@pytest.mark.e2e
def test_infer_saves_the_answers_onnxruntime_gives(served: tuple[TritonServer, Path]) -> None:
    server, build = served
    out = build.parent / "answers.npz"
    argv = ["infer", "--url", server.grpc_url, "--model", "clip", "--data", str(build / "data.npz"), "--out", str(out)]
    assert main(argv) == 0
    got, expected = dict(np.load(out)), ort_answers(build / "model.onnx", build / "data.npz")
    assert {k: v.shape for k, v in got.items()} == {"y": (ROWS, WIDTH), "peak": (ROWS,), "spread": (ROWS,)}
    for name, want in expected.items():
        np.testing.assert_array_equal(got[name], want.reshape(got[name].shape))


@pytest.mark.e2e
def test_evaluate_through_the_endpoint_matches_itself(served: tuple[TritonServer, Path]) -> None:
    """Its data with `x` first: loadtest/evaluator_failures.py counts a batch's rows by `len()` of its first input,
    a numpy scalar where a rank-0 input comes first (TypeError; left to the loadtest layer's owner)."""
    server, build = served
    data = build.parent / "x_first.npz"
    np.savez(data, **{k: v for k, v in sorted(np.load(build / "data.npz").items(), key=lambda kv: kv[0] != "x")})
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", "clip", "--reference", "clip"]
    assert main([*argv, "--data", str(data), "--out", str(build.parent / "evaluated")]) == 0
    assert (build.parent / "evaluated" / "accuracy.json").is_file()
