"""`run_batches` over answers whose shape varies per request, and over rank-0 answers (no server needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.runner import LoggedRunner, RequestLog, Runner, concat_outputs, run_batches


class Detector(Runner):
    """One row per request → det [K, 2] with K the row's value, and its sum as a scalar."""

    def input_specs(self) -> Sequence[TensorSpec]:
        return []

    def activate_impl(self) -> None: ...

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        k = int(feeds["x"][0])
        return {"det": np.full((k, 2), float(k)), "s": np.float32(k), "y": feeds["x"] * 2}


def test_rank_0_answers_are_stacked_one_a_request() -> None:
    """Refused before: "output 's' cannot be joined along the batch axis: its batches have shapes []"."""
    joined = concat_outputs([{"s": np.float32(1)}, {"s": np.float32(2)}])
    np.testing.assert_array_equal(joined["s"], [1.0, 2.0])


def test_the_log_names_outputs_not_one_row_a_sample_and_their_rows_per_request() -> None:
    log = RequestLog()
    with Detector() as runner:
        outputs = run_batches(LoggedRunner(runner, log), [{"x": np.array([k])} for k in (3, 0, 2)])
    assert outputs["det"].shape == (5, 2) and outputs["s"].shape == (3,)
    assert log.rows == [1, 1, 1] and log.shapes["det"] == [(3, 2), (0, 2), (2, 2)]
    assert log.per_request() == ["det"]
    np.testing.assert_array_equal(log.row_counts("det"), [3, 0, 2])
