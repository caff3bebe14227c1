"""Requests are cut to their real length by whichever input marks the data's padding, not only one named
`attention_mask`: the same model with its mask input named `mask` sent every request at its padded width (1024
positions for 32 real ones, 97 % padding), 53 req/s instead of 295, and said nothing (session 57). Where the
padding cannot be cut, or an input only looks like a mask, a note says the requests went at their padded width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_triton_client import served_model

import serving.client
from loadtest.harness import check_ready
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.request_data import padding_note, request_batches
from loadtest.request_shapes import ServedInputs
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData

ROWS, WIDTH, PAD = 64, 24, 0
RNG = np.random.default_rng(57)
LENGTHS = RNG.integers(2, WIDTH // 2, ROWS)
REAL = np.arange(WIDTH)[None, :] < LENGTHS[:, None]


def _served(names: list[str], dims: list[int] | None = None) -> ServedInputs:
    config = {"max_batch_size": 8, "input": [{"name": n, "dims": dims or [-1]} for n in names]}
    return ServedInputs.from_config("m", config)


def _ids() -> np.ndarray:
    return np.where(REAL, RNG.integers(5, 900, (ROWS, WIDTH)), PAD)


def _features() -> np.ndarray:
    """Float steps (N, T, 4) with no token ids beside the mask: the probe's sequence model."""
    return RNG.standard_normal((ROWS, WIDTH, 4)).astype(np.float32) * REAL[:, :, None]


CASES = {
    "mask beside features": {"x": _features(), "mask": REAL.astype(np.int64)},
    "input_mask beside ids": {"input_ids": _ids(), "input_mask": REAL.astype(np.int64)},
    "padding mask (1 at pads)": {"input_ids": _ids(), "src_key_padding_mask": (~REAL).astype(np.int64)},
    "pad mask told by the ids": {"input_ids": _ids(), "mask": (~REAL).astype(np.int64)},
    "length input": {"token_ids": _ids(), "length": LENGTHS.astype(np.int64)},
}


@pytest.mark.parametrize("case", CASES)
def test_requests_are_cut_by_the_input_that_marks_padding(case: str) -> None:
    data = TensorData(CASES[case])
    batches = request_batches(data, 1, _served(list(data.arrays)))
    padded = next(name for name, array in data.arrays.items() if array.ndim >= 2 and array.shape[1] == WIDTH)
    assert [b[padded].shape[1] for b in batches] == LENGTHS.tolist(), "each request at its own length"
    assert all(b[k].shape[1] == b[padded].shape[1] for b in batches for k in b if b[k].ndim >= 2)


def test_the_notes_say_which_input_cut_the_requests() -> None:
    data = TensorData(CASES["mask beside features"])
    share = 1.0 - REAL.mean()
    assert padding_note(data, _served(["x", "mask"])) == (
        f"requests cut to their real length by input 'mask' (1 at real positions; {share:.0%} of the data's "
        "positions are padding)"
    )
    pads = TensorData(CASES["padding mask (1 at pads)"])
    note = padding_note(pads, _served(["input_ids", "src_key_padding_mask"]))
    assert note is not None and "by input 'src_key_padding_mask' (1 at pads;" in note


def test_a_fixed_length_model_is_sent_the_padded_width_and_a_note_says_why() -> None:
    data = TensorData(CASES["mask beside features"])
    served = ServedInputs.from_config(
        "m",
        {"max_batch_size": 8, "input": [{"name": "x", "dims": [WIDTH, 4]}, {"name": "mask", "dims": [-1]}]},
    )
    assert {b["x"].shape[1] for b in request_batches(data, 1, served)} == {WIDTH}
    note = padding_note(data, served)
    assert note is not None
    assert note.startswith(f"requests sent at their padded width ({WIDTH} positions), not cut to their real length")
    assert note.endswith("model 'm' takes input 'x' at a fixed length on that axis")


def test_an_input_that_looks_like_a_mask_only_by_its_values_is_said_not_cut() -> None:
    data = TensorData({"x": _features(), "valid": REAL.astype(np.int64)})
    assert {b["x"].shape[1] for b in request_batches(data, 1, _served(["x", "valid"]))} == {WIDTH}
    note = padding_note(data, _served(["x", "valid"]))
    assert note is not None and note.startswith(f"requests sent at their padded width ({WIDTH} positions): ")
    assert "input 'valid' looks like a padding mask by its values" in note


def test_attention_mask_is_cut_as_before_and_said() -> None:
    data = TensorData({"input_ids": _ids(), "attention_mask": REAL.astype(np.int64)})
    batches = request_batches(data, 1, _served(list(data.arrays)))
    assert [b["input_ids"].shape[1] for b in batches] == LENGTHS.tolist()
    note = padding_note(data, _served(list(data.arrays)))
    assert note is not None and note.startswith("requests cut to their real length by input 'attention_mask'")


def test_data_without_padding_says_nothing() -> None:
    images = TensorData({"pixels": RNG.standard_normal((ROWS, 3, 8, 8)).astype(np.float32)})
    assert padding_note(images, _served(["pixels"], [3, 8, 8])) is None
    full = TensorData({"input_ids": RNG.integers(5, 900, (ROWS, WIDTH)), "mask": np.ones((ROWS, WIDTH), np.int64)})
    assert padding_note(full, _served(["input_ids", "mask"])) is None


def _server(dims: list[int]) -> type:
    """A served sequence model of inputs x [batch, T, 4] (`dims`: T and 4) and mask [batch, T]."""
    shapes = {"x": ("batch", "time", 4), "mask": ("batch", "time")}
    specs = [TensorSpec(n, "float32" if n == "x" else "int64", shape) for n, shape in shapes.items()]
    inputs = [{"name": "x", "dims": [str(d) for d in dims]}, {"name": "mask", "dims": ["-1"]}]
    return served_model(specs, {"max_batch_size": 8, "input": inputs})


@pytest.mark.parametrize(("dims", "said"), [([-1, 4], "requests cut"), ([WIDTH, 4], "requests sent at their")])
def test_the_load_tests_notes_say_how_the_padding_is_sent(
    dims: list[int], said: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    np.savez(tmp_path / "d.npz", **CASES["mask beside features"])
    monkeypatch.setattr(serving.client, "TritonGrpcClient", _server(dims))
    notes = check_ready(LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(1), 1.0))
    assert [note for note in notes if "'mask'" in note and note.startswith(said)], notes
