"""A load test reads which inputs a config reshapes from `serving.reshaped.reshaped_tensors`, as the client does.

`ServedInputs` parsed the config's reshapes a second time (and took every wrapped scalar, outputs too) and shaped a
request with its own reshape rule: data of a reshaped input that did not fit its dims ended the load test's up-front
check in numpy's "cannot reshape array of size 6 into shape (2,1)", not in the one-line refusal every other misfit
gets (session 60).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadtest.request_data import check_sent_shapes
from loadtest.request_shapes import ServedInputs, as_served
from quantserve.data import TensorData, read_as_served
from quantserve.errors import QuantserveError
from serving.reshaped import Reshape, WholeReshape, reshaped_tensors
from serving.scalar_tensors import SCALAR_PARAMETER

BATCHING = {
    "max_batch_size": 8,
    "input": [{"name": "x", "dims": ["4"]}, {"name": "flag", "dims": ["1"], "reshape": {}}],
    "output": [{"name": "label", "dims": ["1"], "reshape": {}}],
}
SCALARS = {
    "max_batch_size": 0,
    "input": [{"name": "audio", "dims": ["1", "-1"]}, {"name": "fmin", "dims": ["1"]}],
    "output": [{"name": "f0", "dims": ["1"]}],
    "parameters": {SCALAR_PARAMETER: {"string_value": json.dumps(["fmin", "f0"])}},
}


@pytest.mark.parametrize(
    ("config", "expected"),
    [(BATCHING, {"flag": Reshape((1,), ())}), (SCALARS, {"fmin": WholeReshape((1,), ())})],
)
def test_the_inputs_reshaped_are_the_clients_less_the_outputs(config: dict, expected: dict) -> None:
    served = ServedInputs.from_config("m", config)
    assert served.reshapes == expected
    assert served.reshapes.items() <= reshaped_tensors(config).items()
    assert served.reshaped == set(expected)  # the wrapped output f0 is no input of a request


def test_a_request_is_shaped_as_the_client_shapes_it() -> None:
    served = ServedInputs.from_config("m", BATCHING)
    request = as_served({"x": np.zeros((2, 4), np.float32), "flag": np.ones(2, np.float32)}, served)
    assert {name: array.shape for name, array in request.items()} == {"x": (2, 4), "flag": (2, 1)}
    whole = ServedInputs.from_config("m", SCALARS)
    request = as_served({"audio": np.zeros((1, 9), np.float32), "fmin": np.asarray(50.0, np.float32)}, whole)
    assert request["fmin"].shape == (1,) and whole.input_specs()[1].shape == ()


def test_a_reshaped_input_that_does_not_fit_its_dims_is_refused_in_one_line() -> None:
    served = ServedInputs.from_config("m", BATCHING)
    arrays = {"x": np.zeros((4, 4), np.float32), "flag": np.zeros((4, 3), np.float32)}
    data = read_as_served("d.npz", TensorData(arrays), served.input_specs(), served.max_batch_size)
    with pytest.raises(QuantserveError, match=r"would send input 'flag' as \[2, 3\], but model 'm' takes \[-1, 1\]"):
        check_sent_shapes(data, [2], served, "--request-batch")
