"""The load test cuts a float sequence's padding by its length input, as it does token ids' (session 61): sleepecg's
sleep stager went at its padded 960 epochs a night (real mean 639), its load file saying `cut_by {}` and no padding
note, its latency ~1.3× overstated."""

from __future__ import annotations

import numpy as np

from loadtest.request_data import cut_inputs, padding_note, request_batches, sent_lengths, trim_padding
from loadtest.request_shapes import ServedInputs
from quantserve.data import TensorData

N, T, F = 60, 24, 5
DIMS = {"features": [-1, F], "lengths": [1]}


def sequences(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features (N, T, F) padded with -1 past each row's `lengths`, and the real positions (N, T)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, T - 4, N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    features = np.where(real[:, :, None], rng.standard_normal((N, T, F)), -1.0).astype(np.float32)
    return {"features": features, "lengths": lengths}, real


def _served(dims: dict[str, list[int]]) -> ServedInputs:
    return ServedInputs.from_config(
        "stager", {"max_batch_size": 8, "input": [{"name": k, "dims": v} for k, v in dims.items()]}
    )


def test_a_request_of_float_sequences_is_cut_to_its_longest_row() -> None:
    arrays, _ = sequences()
    batch = {name: array[:3] for name, array in arrays.items()}
    cut = trim_padding(batch)
    longest = int(batch["lengths"].max())
    assert cut["features"].shape == (3, longest, F)
    assert np.array_equal(cut["features"], batch["features"][:, :longest])
    assert cut["lengths"] is batch["lengths"]


def test_the_cut_is_recorded_and_said() -> None:
    arrays, real = sequences(2)
    data, served = TensorData(arrays), _served(DIMS)
    assert cut_inputs(data, served) == {"lengths": ["features"]}
    assert sent_lengths(data, request_batches(data, 1, served), served) == arrays["lengths"].tolist()
    share = 1.0 - float(real.mean())
    assert padding_note(data, served) == (
        f"requests cut to their real length by input 'lengths' (a length per row; {share:.0%} of the data's "
        "positions are padding)"
    )


def test_a_model_taking_a_fixed_length_is_sent_its_padded_width() -> None:
    arrays, _ = sequences(3)
    data, served = TensorData(arrays), _served({**DIMS, "features": [T, F]})
    assert cut_inputs(data, served) == {}
    note = padding_note(data, served)
    assert note is not None and note.startswith("requests sent at their padded width (24 positions)")
