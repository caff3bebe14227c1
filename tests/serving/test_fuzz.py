"""Property-based fuzzing (hypothesis) of the inference request surface against a live tritonserver.

Model and input names, datatypes, shapes (empty, zero, negative, too large), extra inputs,
requested outputs and raw bytes of any length: every request is answered (a result or an
error, never a timeout), and after each case the server is live and a good request still gets
the right answer. The example count is bounded so the run stays well under a minute.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.e2e
# Hypothesis caches files (constants, examples) in `.hypothesis` under the working folder; keep them in tmp.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="quantserve-hypothesis-"))

DTYPES = ["FP32", "FP16", "FP64", "INT8", "INT32", "INT64", "UINT8", "BOOL", "BYTES"]
GOOD = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)

names = st.one_of(st.just("x"), st.text(min_size=0, max_size=12))
shapes = st.lists(st.one_of(st.integers(-2, 9), st.just(8), st.just(1 << 40)), min_size=0, max_size=4)
raw = st.one_of(
    st.binary(max_size=256),
    st.integers(0, 9).map(lambda n: np.ones((n, 8), np.float32).tobytes()),
    st.just(np.full((1, 8), np.nan, np.float32).tobytes()),
)
tensors = st.tuples(names, st.sampled_from(DTYPES), shapes, raw)
requests = st.fixed_dictionaries(
    {
        "model": st.one_of(st.just("dense"), st.just("dense"), st.text(max_size=10)),
        "version": st.sampled_from(["", "", "1", "2", "-1", "../1"]),
        "inputs": st.lists(tensors, min_size=0, max_size=3),
        "outputs": st.one_of(st.none(), st.lists(st.sampled_from(["probs", "nope", ""]), max_size=2)),
    }
)


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., Any]
) -> tuple[Any, Any, np.ndarray]:
    from serving_models import make_build_dir

    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("fuzz")
    deploy(make_build_dir(root / "build"), root / "repo", "dense", max_batch=8)
    server = triton_server_factory(root / "repo")
    client = grpcclient.InferenceServerClient(server.grpc_url)
    expected = good_request(client)
    return server, client, expected


def good_request(client: Any) -> np.ndarray:
    tensor = grpcclient.InferInput("x", list(GOOD.shape), "FP32")
    tensor.set_data_from_numpy(GOOD)
    return np.asarray(client.infer("dense", [tensor], client_timeout=30).as_numpy("probs"))


def build_input(name: str, dtype: str, shape: list[int], content: bytes) -> Any:
    tensor = grpcclient.InferInput(name, shape, dtype)
    tensor._raw_content = content  # raw bytes as they go on the wire, whatever the declared shape says
    return tensor


@settings(
    max_examples=60,
    deadline=None,
    database=None,  # tests write only under tmp_path: no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=requests)
def test_every_request_is_answered_and_the_server_survives(
    fuzz_target: tuple[Any, Any, np.ndarray], request: dict[str, Any]
) -> None:
    server, client, expected = fuzz_target
    inputs = [build_input(*spec) for spec in request["inputs"]]
    outputs = [grpcclient.InferRequestedOutput(n) for n in request["outputs"]] if request["outputs"] else None
    try:
        client.infer(request["model"], inputs, model_version=request["version"], outputs=outputs, client_timeout=20)
    except InferenceServerException as exc:
        assert "DEADLINE_EXCEEDED" not in str(exc.status()), f"no answer within 20 s: {request}"
    assert server.is_running()
    assert client.is_server_live(client_timeout=10) and client.is_model_ready("dense", client_timeout=10)
    np.testing.assert_allclose(good_request(client), expected, rtol=1e-6)


def test_the_good_request_is_a_softmax(fuzz_target: tuple[Any, Any, np.ndarray]) -> None:
    _, _, expected = fuzz_target
    assert expected.shape == (2, 4) and np.allclose(expected.sum(axis=1), 1.0, atol=1e-5)
