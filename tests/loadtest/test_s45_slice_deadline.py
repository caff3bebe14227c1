"""evaluate's deadline line names the request that timed out: a slice of the model's max_batch_size where the batch
was bigger (session 45: "did not answer a request of 64 samples" where the runner had sent 32-row slices, one of
which took 4.5 s, and the advice was a smaller --batch-size of any size)."""

from __future__ import annotations

import numpy as np

from loadtest.evaluator_failures import RowsSent, request_failure
from quantserve.errors import QuantserveError

TIMED_OUT = QuantserveError("127.0.0.1:1: inference failed: [StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded")


def _sent_first_batch(rows: int, batch: int) -> RowsSent:
    sent = RowsSent(({"x": np.zeros((batch, 2))} for _ in range(rows // batch)), rows, rows // batch)
    next(iter(sent))
    return sent


def test_a_batch_sent_in_slices_names_the_slice() -> None:
    said = str(request_failure(TIMED_OUT, "127.0.0.1:1", "big", _sent_first_batch(64, 64), 0.15, max_batch=32))
    assert (
        "did not answer a request of at most 32 samples (a slice of rows 1–64 of 64: the model's max_batch_size 32) "
        "within 0.15 s" in said
    ), said
    assert said.endswith("send fewer samples a request (--batch-size below 32)"), said


def test_a_batch_sent_whole_names_its_rows() -> None:
    said = str(request_failure(TIMED_OUT, "127.0.0.1:1", "big", _sent_first_batch(64, 16), 0.15, max_batch=32))
    assert "did not answer a request of 16 samples (rows 1–16 of 64) within 0.15 s" in said, said
    assert said.endswith("(--batch-size)"), said


def test_a_request_of_scalars_alone_names_its_one_sample() -> None:
    """An --unbatched model of rank-0 inputs alone: each request is one sample, not "rows 1–0" (session 60)."""
    sent = RowsSent(({"x": np.float32(1.0)} for _ in range(3)), 3, 3)
    next(iter(sent))
    said = str(request_failure(TIMED_OUT, "127.0.0.1:1", "scalars", sent, 0.15))
    assert "rows 1–1 of 3" in said, said
