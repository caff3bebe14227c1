"""The input that marks a text model's real tokens is given by its name as data (`token_values.real_tokens`), beside
the words that say it: the load test found it by its quoted name inside those words, and took an input whose name
sits inside the marking input's quoted name ("s mask" in "where input 'it's mask' is 1") for it."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.request_data import LENGTH, REAL_ON, padding_input
from optimizer.token_values import real_tokens, real_tokens_read

ROWS, WIDTH = 32, 12
RNG = np.random.default_rng(58)
LENGTHS = RNG.integers(2, WIDTH, ROWS)
REAL = np.arange(WIDTH)[None, :] < LENGTHS[:, None]
IDS = np.where(REAL, RNG.integers(5, 900, (ROWS, WIDTH)), 0)
SCALES = np.full((ROWS, WIDTH), 0.5, np.float32)  # (N, T), not 0s and 1s: no mask the optimizer reads


CASES = {  # inputs, in order, and the input that marks the real tokens (how, to the load test)
    "'s mask' before 'it's mask'": ({"s mask": SCALES, "input_ids": IDS, "it's mask": REAL.astype(np.int64)}, REAL_ON),
    "'s length' before 'it's length'": (
        {"s length": LENGTHS.astype(np.float32), "input_ids": IDS, "it's length": LENGTHS.astype(np.int64)},
        LENGTH,
    ),
    "'mask_ids' before 'mask'": ({"mask_ids": IDS, "mask": REAL.astype(np.int64)}, REAL_ON),
}
MARKED_BY = {"'s mask' before 'it's mask'": "it's mask", "'s length' before 'it's length'": "it's length"}


@pytest.mark.parametrize("case", CASES)
def test_the_input_that_marks_the_real_tokens_is_named_as_data(case: str) -> None:
    inputs, marks = CASES[case]
    name = MARKED_BY.get(case, "mask")
    found = real_tokens(inputs)
    assert found.input_name == name and f"'{name}'" in found.basis
    assert found.positions is not None and np.array_equal(found.positions, REAL)
    positions, basis = real_tokens_read(inputs)
    assert np.array_equal(positions, REAL) and basis == found.basis, "real_tokens_read as before"
    padding = padding_input(inputs)
    assert padding is not None and (padding.name, padding.marks, padding.width) == (name, marks, WIDTH)


def test_positions_no_input_marks_name_none() -> None:
    found = real_tokens({"input_ids": IDS})
    assert found.input_name is None and found.basis == "before each row's trailing pad ids"
    assert padding_input({"input_ids": IDS}) is None
    assert real_tokens({"x": SCALES}) == (None, "", None) and real_tokens(None) == (None, "", None)
