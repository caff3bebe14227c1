"""A served tensor has the model's own shape in every answer, as `model_metadata` gives it (session 46, left open).

A scikit-learn classifier converted by skl2onnx (`label` [N] int64, `probabilities` [N, C]) deployed and served:
`TritonGrpcClient.model_metadata` said `label` is [batch] (deploy serves one value per sample as dims [1] reshaped
to []), but `TritonGrpcClient.infer` answered it [N, 1], and refused an input of the model's shape [N] ("Expected
[-1,1], got [3]"). The models here are built as the converters write them: skl2onnx's LogisticRegression
(LinearClassifier → Normalizer, axis 0 of no name), a LabelEncoder taking one string per sample, a scaler taking
one float per sample; each is optimized (FP32), deployed and served by a real tritonserver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from quantserve.cli import main
from serving.client import TritonGrpcClient
from serving.declared_outputs import DeclaredOutput, array_mismatch, declared_outputs
from serving.reshaped import as_model_shape, as_served, reshaped_tensors
from serving.server import TritonServer
from serving.triton_runner import TritonRunner

ML = helper.make_opsetid("ai.onnx.ml", 2)
CITIES = np.array(["oslo", "rome", "lima", "paris"] * 4)
FEATURES = np.random.default_rng(48).uniform(0.1, 7.0, size=(16, 4)).astype(np.float32)
FEEDS = {
    "iris": {"X": FEATURES},
    "encoder": {"city": CITIES},
    "scaler": {"amount": np.arange(16, dtype=np.float32)},
}
CONFIG = {  # as Triton's JSON gives deploy's config of the classifier
    "max_batch_size": 8,
    "output": [
        {"name": "label", "data_type": "TYPE_INT64", "dims": ["1"], "reshape": {}},
        {"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["3"]},
    ],
}


@dataclass
class Served:
    server: TritonServer
    sources: dict[str, Path]


def _any_rows(name: str, dtype: int, *dims: int) -> onnx.ValueInfoProto:
    """A tensor whose axis 0 has neither size nor name, as skl2onnx writes it."""
    return helper.make_tensor_value_info(name, dtype, [None, *dims])


def _logistic_regression(path: Path) -> None:
    """skl2onnx's LogisticRegression (zipmap off): `label` [N] int64 and `probabilities` [N, 3]."""
    coefficients = np.random.default_rng(1).normal(size=12).round(3).tolist()
    nodes = [
        helper.make_node(
            "LinearClassifier",
            ["X"],
            ["label", "probability_tensor"],
            domain="ai.onnx.ml",
            classlabels_ints=[0, 1, 2],
            coefficients=coefficients,
            intercepts=[0.5, -0.25, 0.1],
            multi_class=1,
            post_transform="SOFTMAX",
        ),
        helper.make_node("Normalizer", ["probability_tensor"], ["probabilities"], domain="ai.onnx.ml", norm="L1"),
    ]
    outputs = [_any_rows("label", TensorProto.INT64), _any_rows("probabilities", TensorProto.FLOAT, 3)]
    graph = helper.make_graph(nodes, "LogisticRegression", [_any_rows("X", TensorProto.FLOAT, 4)], outputs)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), ML]), str(path))


def _label_encoder(path: Path) -> None:
    """One string per sample in (`city` [N]), its code out (`code` [N] int64)."""
    node = helper.make_node(
        "LabelEncoder",
        ["city"],
        ["code"],
        domain="ai.onnx.ml",
        keys_strings=["oslo", "rome", "lima"],
        values_int64s=[0, 1, 2],
        default_int64=-1,
    )
    graph = helper.make_graph(
        [node], "encoder", [_any_rows("city", TensorProto.STRING)], [_any_rows("code", TensorProto.INT64)]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), ML]), str(path))


def _scaler(path: Path) -> None:
    """One float per sample in (`amount` [N]), doubled out (`scaled` [N])."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["amount", "two"], ["scaled"])],
        "scaler",
        [_any_rows("amount", TensorProto.FLOAT)],
        [_any_rows("scaled", TensorProto.FLOAT)],
        [two],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]) -> Served:
    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("reshaped")
    sources = {}
    for name, write in (("iris", _logistic_regression), ("encoder", _label_encoder), ("scaler", _scaler)):
        sources[name] = root / f"{name}.onnx"
        write(sources[name])
        np.savez(root / f"{name}.npz", **FEEDS[name])
        speed = SpeedSettings(enabled=False)
        optimize(OptimizeOptions(sources[name], root / f"{name}.npz", "fp32", "embedded", root / name, speed=speed))
        deploy(root / name, root / "repo", name, max_batch=8, instances=1)
    return Served(triton_server_factory(root / "repo"), sources)


def _onnxruntime(source: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _shapes(answer: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {name: array.shape for name, array in answer.items()}


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["iris", "encoder", "scaler"])
def test_infer_answers_the_shapes_the_metadata_gives_and_the_models_values(served: Served, model: str) -> None:
    feeds = {name: array[:5] for name, array in FEEDS[model].items()}
    with TritonGrpcClient(served.server.grpc_url) as client:
        _, outputs = client.model_metadata(model)
        answer = client.infer(model, feeds)
    promised = {o.name: tuple(5 if d == "batch" else d for d in o.shape) for o in outputs}
    assert _shapes(answer) == promised
    expected = _onnxruntime(served.sources[model], feeds)
    assert _shapes(answer) == _shapes(expected)
    for name, array in expected.items():
        np.testing.assert_allclose(answer[name], array, rtol=1e-6)


@pytest.mark.e2e
def test_the_classifiers_label_comes_back_one_value_per_sample(served: Served) -> None:
    with TritonGrpcClient(served.server.grpc_url) as client:
        answer = client.infer("iris", {"X": FEATURES[:8]}, outputs=["label"])
    assert answer["label"].shape == (8,) and answer["label"].dtype == np.int64


@pytest.mark.e2e
@pytest.mark.parametrize(("model", "output"), [("encoder", "code"), ("scaler", "scaled")])
def test_an_input_of_one_value_per_sample_goes_as_the_model_has_it_or_as_served(
    served: Served, model: str, output: str
) -> None:
    (name, values), *_ = FEEDS[model].items()
    with TritonGrpcClient(served.server.grpc_url) as client:
        own = client.infer(model, {name: values[:3]})[output]
        as_sent = client.infer(model, {name: values[:3, None]})[output]
    assert own.shape == as_sent.shape == (3,) and np.array_equal(own, as_sent)


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["iris", "encoder", "scaler"])
def test_the_runner_answers_as_the_client_over_batches_sliced_to_max_batch_size(served: Served, model: str) -> None:
    """16 rows in requests of 8: the runner checks each answer against the model's declared outputs."""
    with TritonRunner(served.server.grpc_url, model) as runner:
        answer = runner.infer(FEEDS[model])
    expected = _onnxruntime(served.sources[model], FEEDS[model])
    assert _shapes(answer) == _shapes(expected)
    assert all(np.allclose(answer[name], array, rtol=1e-6) for name, array in expected.items())


@pytest.mark.e2e
def test_infer_saves_the_label_as_the_model_gives_it(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "rows.npz", X=FEATURES)
    argv = ["infer", "--url", served.server.grpc_url, "--model", "iris", "--data", str(tmp_path / "rows.npz")]
    assert main([*argv, "--out", str(tmp_path / "out.npz")]) == 0
    assert "label: int64 [16]\n" in capsys.readouterr().out
    assert np.load(tmp_path / "out.npz")["label"].shape == (16,)


def test_reshaped_tensors_move_between_the_served_and_the_models_shape_and_nothing_else() -> None:
    reshapes = reshaped_tensors(CONFIG)
    assert reshapes == {"label": ((1,), ())}
    label = np.arange(4)
    assert as_model_shape("label", label[:, None], reshapes).shape == (4,)
    assert as_served("label", label, reshapes).shape == (4, 1)
    assert as_served("label", label[:, None], reshapes).shape == (4, 1)  # sent as served already
    assert as_model_shape("label", np.zeros((4, 2)), reshapes).shape == (4, 2)  # a wrong answer, for the checks
    assert as_model_shape("probabilities", np.zeros((4, 3)), reshapes).shape == (4, 3)
    assert reshaped_tensors({**CONFIG, "max_batch_size": 0}) == {}


def test_answers_in_the_models_shape_are_checked_against_it() -> None:
    declared = declared_outputs(CONFIG, model_shapes=True)
    assert declared["label"] == DeclaredOutput("label", "INT64", (-1,))
    assert declared_outputs(CONFIG)["label"] == DeclaredOutput("label", "INT64", (-1, 1))  # on the wire
    right = {"label": np.zeros(4, np.int64), "probabilities": np.zeros((4, 3), np.float32)}
    assert array_mismatch(declared, right, "rows 1–4") is None
    wrong = {**right, "label": np.zeros((4, 2), np.int64)}
    assert array_mismatch(declared, wrong, "rows 1–4") == (
        "output 'label' of rows 1–4 answered int64 [4, 2]; the model declares INT64 [-1]: the model's execute "
        "returns a wrong shape"
    )


def test_the_config_is_read_once_per_model_and_client_retried_as_a_request_is() -> None:
    """A server restarting answers the first config read UNAVAILABLE; the next, its config, read no more after."""
    from tritonclient.utils import InferenceServerException

    reads: list[str] = []

    def config(model: str, as_json: bool, client_timeout: float) -> dict:
        reads.append(model)
        if len(reads) == 1:
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")
        return {"config": CONFIG}

    client = TritonGrpcClient("127.0.0.1:1", timeout_s=5)
    client._client.get_model_config = config
    assert client._model_reshapes("iris") == client._model_reshapes("iris") == {"label": ((1,), ())}
    assert reads == ["iris", "iris"]
    client.close()
