"""loadtest's refusal where the length input a build RECORDED does not fit the load data says whose word it was
(session 62): a sleep stager built with `optimize --length-input lengths`, load-tested on data without `lengths`, was
refused with "--length-input lengths: no input 'lengths'", a flag the user never gave loadtest. As padding_note says
"as model 'm' was built (optimize --length-input NAME)", so does the refusal; loadtest's own --length-input, where
given, is the user's word and stays as it was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loadtest.request_data import cut_inputs, padding_note, request_batches
from loadtest.request_shapes import ServedInputs
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from serving.length_parameter import length_parameter

N, T, FEATURES = 32, 20, 3
EPOCHS = np.random.default_rng(62).integers(3, T // 2, N)


def _data() -> TensorData:
    features = np.random.default_rng(1).normal(0, 1, (N, T, FEATURES)).astype(np.float32)
    features[np.arange(T)[None, :] >= EPOCHS[:, None]] = -1.0
    return TensorData({"features": features, "n_epochs": EPOCHS.astype(np.int64)})


def _served(length_input: str) -> ServedInputs:
    config: dict[str, Any] = {
        "max_batch_size": 8,
        "input": [{"name": "features", "dims": ["-1", str(FEATURES)]}, {"name": "n_epochs", "dims": ["1"]}],
        "parameters": {k: {"string_value": v} for k, v in length_parameter(length_input).items()},
    }
    return ServedInputs.from_config("stager", config)


@pytest.mark.parametrize("read", [padding_note, cut_inputs, lambda data, served: request_batches(data, 4, served)])
def test_the_builds_recorded_length_input_is_refused_as_the_builds_word(read: Any) -> None:
    with pytest.raises(QuantserveError) as raised:
        read(_data(), _served("lengths"))
    assert str(raised.value) == (
        "--length-input lengths: no input 'lengths' (inputs: features, n_epochs), as model 'stager' was built "
        "(optimize --length-input lengths): pass --length-input NAME or none to cut the requests otherwise"
    )


def test_loadtests_own_length_input_is_refused_as_the_users_word() -> None:
    with pytest.raises(QuantserveError) as raised:
        padding_note(_data(), _served("n_epochs").told("lengths"))
    assert str(raised.value) == "--length-input lengths: no input 'lengths' (inputs: features, n_epochs)"
