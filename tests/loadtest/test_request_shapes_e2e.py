"""Load-test requests shaped as the served model's config says, against a real tritonserver.

Measured before: a max_batch_size 0 model with a flag of one value per sample failed 432/432 requests ("Expected
[-1], got [1,1]": every 1-D array was sent as [n, 1]), and a token model of fixed length 16 every request ("Expected
[-1,16], got [1,8]": padding cut on an axis the model does not let vary); the up-front check had passed both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.harness import check_ready, run_load
from loadtest.load_settings import LoadSettings
from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

SEQ = 16


def _token_build(directory: Path, seq: int | str) -> Path:
    """input_ids, attention_mask [batch, seq] (int64) → score [batch, 1], the sum of the unmasked ids; `seq` an int
    for a model of fixed length, a name for a dynamic one."""
    import onnx
    from onnx import TensorProto, helper

    directory.mkdir(parents=True, exist_ok=True)
    tokens = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", seq]) for n in ("input_ids", "attention_mask")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["input_ids", "attention_mask"], ["kept"]),
            helper.make_node("Cast", ["kept"], ["kept_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["kept_f", "axis"], ["score"], keepdims=1),
        ],
        "tokens",
        tokens,
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(directory / "model.onnx"))
    inputs = [TensorSpec(n, "int64", ("batch", seq)) for n in ("input_ids", "attention_mask")]
    outputs = [TensorSpec("score", "float32", ("batch", 1))]
    Manifest(directory.name, inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def _one_row_build(directory: Path) -> Path:
    """The test MLP with no batch axis: x [1, 32] → logits [1, 10] (deployed with max_batch_size 0)."""
    import onnx

    models.make_build_dir(directory)
    model = onnx.load(str(directory / "model.onnx"))
    for tensor in (model.graph.input[0], model.graph.output[0]):
        tensor.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(directory / "model.onnx"))
    inputs, outputs = [TensorSpec("x", "float32", (1, models.FEATURES))], [TensorSpec("logits", "float32", (1, 10))]
    Manifest(directory.name, inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def _padded_tokens(samples: int, seed: int = 0) -> TensorData:
    """Token ids padded to SEQ, each sample 3–12 tokens long (its attention_mask 1 there, 0 after)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 13, size=samples)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    return TensorData({"input_ids": rng.integers(1, 100, size=(samples, SEQ)) * mask, "attention_mask": mask})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., object]) -> dict[str, str]:
    """One server: `flag0` (the MLP with a one-value-per-sample input, max_batch_size 0), `tokfix` and `tokdyn`
    (fixed and dynamic length, max_batch_size 8), `onerow` (dims [1, 32], max_batch_size 0); and the data files."""
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("shapes")
    builds = root / "build"
    deploy(models.make_gain_build(builds / "flag0", models.mlp_weights()), root / "repo", "flag0", max_batch=0)
    deploy(_token_build(builds / "tokfix", SEQ), root / "repo", "tokfix", max_batch=8)
    deploy(_token_build(builds / "tokdyn", "seq"), root / "repo", "tokdyn", max_batch=8)
    deploy(_one_row_build(builds / "onerow"), root / "repo", "onerow", max_batch=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, models.FEATURES)).astype(np.float32)
    gain = TensorData({"x": x, "gain": rng.uniform(0.5, 2.0, 32).astype(np.float32)}).save(root / "gain.npz")
    server = triton_server_factory(root / "repo")
    return {
        "url": server.grpc_url,  # type: ignore[attr-defined]
        "gain": str(gain),
        "tokens": str(_padded_tokens(32).save(root / "tokens.npz")),
        "x": str(TensorData({"x": x}).save(root / "x.npz")),
    }


@pytest.mark.e2e
def test_a_one_value_per_sample_input_of_a_model_that_does_not_batch_is_sent_as_its_dims(
    served: dict[str, str], tmp_path: Path
) -> None:
    """`gain` [-1] of a max_batch_size 0 model goes as [n], not [n, 1]: no request fails."""
    result = run_load(served["url"], "flag0", served["gain"], users=2, duration_s=2, out_dir=tmp_path)
    assert result.requests > 0 and result.failed_requests == 0, result.errors


@pytest.mark.e2e
def test_padding_is_kept_on_an_axis_the_model_has_fixed(served: dict[str, str], tmp_path: Path) -> None:
    """Token inputs of fixed length 16 (an input named attention_mask) are sent at 16, every request answered."""
    result = run_load(served["url"], "tokfix", served["tokens"], users=2, duration_s=2, out_dir=tmp_path)
    assert result.requests > 0 and result.failed_requests == 0, result.errors


@pytest.mark.e2e
def test_padding_is_cut_only_where_the_served_config_says_the_length_varies(served: dict[str, str]) -> None:
    """The configs as Triton gives them: tokdyn's requests are cut to their own length, tokfix's stay at 16."""
    from loadtest.request_data import request_batches
    from loadtest.request_shapes import read_served_inputs

    data = _padded_tokens(32)
    widths = {}
    for model in ("tokfix", "tokdyn"):
        shapes = read_served_inputs(served["url"], model, None)
        assert shapes is not None and shapes.max_batch_size == 8
        widths[model] = {batch["input_ids"].shape[1] for batch in request_batches(data, 1, shapes)}
    assert widths["tokfix"] == {SEQ}
    assert widths["tokdyn"] == {int(n) for n in data.arrays["attention_mask"].sum(axis=1)}


@pytest.mark.e2e
def test_the_check_before_the_run_refuses_requests_the_model_would_refuse(served: dict[str, str]) -> None:
    """Requests of 4 samples to a model of dims [1, 32] (max_batch_size 0) would all fail: refused in one line before
    any load; requests of 1 sample, and those to the two models above, pass."""
    url, x = served["url"], Path(served["x"])
    with pytest.raises(QuantserveError) as caught:
        check_ready(LoadSettings(url, "onerow", x, request_batch=4))
    assert str(caught.value) == (
        "--request-batch: requests of 4 samples would send input 'x' as [4, 32], but model 'onerow' takes [1, 32] "
        "(max_batch_size 0); Triton would refuse every one: pass --request-batch 1"
    )
    check_ready(LoadSettings(url, "onerow", x, request_batch=1))
    check_ready(LoadSettings(url, "flag0", Path(served["gain"]), request_batch=4))
    check_ready(LoadSettings(url, "tokfix", Path(served["tokens"]), request_batch=3))


def test_requests_follow_the_config_as_triton_gives_it() -> None:
    """Dims come as strings in Triton's JSON; a reshaped one-value-per-sample input of a batching model goes as
    [n, 1], the same input of a model that does not batch as [n]."""
    from loadtest.request_data import trim_padding
    from loadtest.request_shapes import ServedInputs, as_served

    flag = np.array([True, False, True])
    batched = {"max_batch_size": 8, "input": [{"name": "flag", "dims": ["1"], "reshape": {"shape": []}}]}
    unbatched = {"max_batch_size": 0, "input": [{"name": "flag", "dims": ["-1"]}]}
    assert as_served({"flag": flag}, ServedInputs.from_config("m", batched))["flag"].shape == (3, 1)
    assert as_served({"flag": flag}, ServedInputs.from_config("m", unbatched))["flag"].shape == (3,)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    tokens = {"input_ids": mask * 7, "attention_mask": mask}
    dynamic = {"max_batch_size": 0, "input": [{"name": n, "dims": ["-1", "-1"]} for n in tokens]}
    fixed_mask = {**dynamic, "input": [{"name": "input_ids", "dims": ["-1", "-1"]}, {"name": "attention_mask"}]}
    fixed_mask["input"][1]["dims"] = ["-1", "4"]
    assert trim_padding(tokens, ServedInputs.from_config("m", dynamic))["input_ids"].shape == (2, 2)
    assert trim_padding(tokens, ServedInputs.from_config("m", fixed_mask)) is tokens, "every padded input must vary"
