"""A model that does not batch with rank-0 inputs (swift-f0's fmin/fmax) is served with them as dims [1] (deploy wraps
them, `serving.scalar_tensors`): a load test of whole-request data sent each scalar as [] and was refused before any
load ("would send input 'fmin' as [], but model 'sf0' takes [1]"); its requests now carry them as [1], as `infer`'s."""

from __future__ import annotations

import json

import numpy as np

from loadtest.request_data import check_sent_shapes, request_batches
from loadtest.request_shapes import ServedInputs, as_served, shape_problem
from quantserve.data import TensorData, read_as_served
from serving.scalar_tensors import SCALAR_PARAMETER

CONFIG = {
    "max_batch_size": 0,
    "input": [
        {"name": "audio", "data_type": "TYPE_FP32", "dims": ["1", "-1"]},
        {"name": "fmin", "data_type": "TYPE_FP32", "dims": ["1"]},
        {"name": "fmax", "data_type": "TYPE_FP32", "dims": ["1"]},
    ],
    "parameters": {SCALAR_PARAMETER: {"string_value": json.dumps(["fmin", "fmax"])}},
}


def _whole_requests(served: ServedInputs) -> TensorData:
    arrays = {
        "audio": np.zeros((6, 1, 320), np.float32),
        "fmin": np.full(6, 50.0, np.float32),
        "fmax": np.full(6, 900.0, np.float32),
    }
    return read_as_served("d.npz", TensorData(arrays), served.input_specs(), served.max_batch_size)


def test_the_wrapped_scalars_go_as_dims_1_and_every_request_fits() -> None:
    served = ServedInputs.from_config("sf0", CONFIG)
    data = _whole_requests(served)
    assert data.requests.whole
    check_sent_shapes(data, [1], served, "--request-batch")  # refused before: 'fmin' as [] vs [1]
    for batch in request_batches(data, 1, served):
        request = as_served(batch, served)
        assert {name: a.shape for name, a in request.items()} == {"audio": (1, 320), "fmin": (1,), "fmax": (1,)}
        assert shape_problem(request, served) is None
        assert float(request["fmax"][0]) == 900.0


def test_an_input_of_dims_1_not_wrapped_is_still_sent_as_the_data_has_it() -> None:
    config = {**CONFIG, "parameters": {}}
    served = ServedInputs.from_config("sf0", config)
    batch = {"audio": np.zeros((1, 320), np.float32), "fmin": np.asarray(50.0, np.float32)}
    assert as_served(batch, served)["fmin"].shape == ()
