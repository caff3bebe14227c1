"""loadtest cuts padded requests by the length input the build was told (session 61): a sleep stager's `features`
(N, T, 6), -1 past each night's epochs, counted by `n_epochs` (N,) — no length-like name — built with
`optimize --length-input n_epochs`, was load-tested at the padded width, every request T epochs wide, while evaluate
read real epochs by the recorded input (`serving.length_parameter`). The served config's record reaches the requests
(`ServedInputs.length_input`); where nothing records it, the name alone decides, as before."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadtest.request_data import cut_inputs, padding_note, request_batches, sent_lengths
from loadtest.request_shapes import ServedInputs
from quantserve.data import TensorData
from serving.length_parameter import length_parameter

N, T, FEATURES, BATCH = 64, 40, 6, 4
RNG = np.random.default_rng(6162)
EPOCHS = RNG.integers(3, T // 2, N)


def _data() -> TensorData:
    features = RNG.normal(0, 1, (N, T, FEATURES)).astype(np.float32)
    features[np.arange(T)[None, :] >= EPOCHS[:, None]] = -1.0  # padded epochs, one value past each night
    return TensorData({"features": features, "n_epochs": EPOCHS.astype(np.int64)})


def _served(length_input: str | None) -> ServedInputs:
    """The stager as deploy serves it (Triton's JSON), its build's --length-input recorded where given."""
    config: dict[str, Any] = {
        "max_batch_size": 8,
        "input": [{"name": "features", "dims": ["-1", str(FEATURES)]}, {"name": "n_epochs", "dims": ["1"]}],
        "parameters": {k: {"string_value": v} for k, v in length_parameter(length_input).items()},
    }
    return ServedInputs.from_config("stager", config)


def test_requests_are_cut_by_the_recorded_length_input_of_no_length_like_name() -> None:
    data, served = _data(), _served("n_epochs")
    assert served.length_input == "n_epochs"
    batches = request_batches(data, BATCH, served)
    widths = [batch["features"].shape[1] for batch in batches]
    expected = [int(EPOCHS[start : start + BATCH].max()) for start in range(0, N, BATCH)]
    assert widths == expected and max(widths) < T, "each request at its own nights' length"
    assert cut_inputs(data, served) == {"n_epochs": ["features"]}
    assert sent_lengths(data, batches, served) == expected
    note = padding_note(data, served) or ""
    assert note.startswith("requests cut to their real length by input 'n_epochs' (a length per row;"), note
    assert note.endswith("as model 'stager' was built (optimize --length-input n_epochs)"), note


def test_uncut_where_nothing_records_it() -> None:
    data, served = _data(), _served(None)
    assert served.length_input is None
    assert {batch["features"].shape[1] for batch in request_batches(data, BATCH, served)} == {T}
    assert cut_inputs(data, served) == {} and padding_note(data, served) is None
