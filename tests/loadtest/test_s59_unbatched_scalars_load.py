"""loadtest takes the whole-sample data file that optimize --unbatched, infer and evaluate take.

A model served without batching (max_batch_size 0) whose inputs take one request (swift-f0 wrapped: audio
[1, samples], fmin [1], fmax [1]) is given data with one axis more, each data[i] one request. evaluate read it so;
loadtest refused it: "input 'audio' has shape (256, 1, 32000), the model expects [1, 'dim1']".
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fake_triton_client import served_model

import serving.client
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.request_data import check_sent_shapes, request_batches
from loadtest.request_shapes import ServedInputs
from loadtest.step_checks import check_model_ready
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, read_as_served
from quantserve.errors import QuantserveError

SAMPLES, ROWS = 64, 12
CONFIG = {
    "max_batch_size": 0,
    "input": [
        {"name": "audio", "data_type": "TYPE_FP32", "dims": ["1", "-1"]},
        {"name": "fmin", "data_type": "TYPE_FP32", "dims": ["1"]},
        {"name": "fmax", "data_type": "TYPE_FP32", "dims": ["1"]},
    ],
}
INPUTS = [
    TensorSpec("audio", "float32", (1, "dim1")),
    TensorSpec("fmin", "float32", (1,)),
    TensorSpec("fmax", "float32", (1,)),
]


def _arrays() -> dict[str, np.ndarray]:
    """ROWS whole requests: audio (ROWS, 1, SAMPLES), fmin and fmax (ROWS, 1), one axis more than the inputs."""
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((ROWS, 1, SAMPLES)).astype(np.float32)
    return {"audio": audio, "fmin": np.full((ROWS, 1), 50, np.float32), "fmax": np.full((ROWS, 1), 900, np.float32)}


def _whole_data(path: Path) -> Path:
    np.savez(path, **_arrays())  # type: ignore[arg-type]
    return path


def test_the_run_check_takes_whole_requests_for_a_model_that_does_not_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving.client, "TritonGrpcClient", served_model(INPUTS, CONFIG))
    settings = LoadSettings("127.0.0.1:1", "sf0", _whole_data(tmp_path / "w.npz"), ClosedLoop(1), 1.0)
    assert check_model_ready(settings) == []
    with pytest.raises(QuantserveError) as refused:
        check_model_ready(settings, ((4,), "--request-batch"))
    assert str(refused.value) == (
        "--request-batch: requests of 4 samples, but each data[i] is one whole request of model 'sf0' "
        "(max_batch_size 0; the data has one axis more than its inputs): send 1 sample a request"
    )


def test_whole_requests_are_each_data_row_as_it_is() -> None:
    served = ServedInputs.from_config("sf0", CONFIG)
    arrays = _arrays()
    data = read_as_served("d.npz", TensorData(arrays), served.input_specs(), served.max_batch_size)
    batches = request_batches(data, 1, served)
    assert len(batches) == ROWS and [b["audio"].shape for b in batches] == [(1, SAMPLES)] * ROWS
    assert all(b["fmin"].shape == (1,) for b in batches)
    assert np.array_equal(batches[3]["audio"], arrays["audio"][3])
    check_sent_shapes(data, (1,), served, "--request-batch")
    batched = TensorData(arrays)  # a batching model's read leaves the data as it is
    assert not read_as_served("d.npz", batched, served.input_specs(), 8).requests.whole


USERS_CHILD = textwrap.dedent(
    """
    import json, sys
    import loadtest.grpc_user as users
    from loadtest.request_shapes import ServedInputs

    users._served["sf0"] = ServedInputs.from_config("sf0", json.loads(sys.argv[2]))
    built = users.request_inputs(sys.argv[1], 1, "sf0")
    print(json.dumps([len(built), {t.name(): list(t.shape()) for t in built[0]}]))
    """
)


def test_the_users_build_a_request_a_data_row(tmp_path: Path) -> None:
    """In a child process: importing `loadtest.grpc_user` imports locust."""
    data = _whole_data(tmp_path / "w.npz")
    argv = [sys.executable, "-c", USERS_CHILD, str(data), json.dumps(CONFIG)]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == [ROWS, {"audio": [1, SAMPLES], "fmin": [1], "fmax": [1]}]
