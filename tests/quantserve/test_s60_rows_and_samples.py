"""`batch_rows` and `request_rows` part on one case only, and their callers need each side of it (session 60).

A request of scalars alone (a model that does not batch, every input rank 0) has no axis 0 to slice: `batch_rows`
says 0 (speed's `whole` then times it as a whole --unbatched sample, not cut to `[:1]`, which raised IndexError),
while it is one sample sent and answered: `request_rows` says 1, and a rank-0 answer to it is one row per sample.
"""

from __future__ import annotations

import numpy as np

from quantserve.data import batch_rows
from quantserve.runner import RequestLog, request_rows


def test_scalars_alone_are_no_rows_to_slice_but_one_sample_sent() -> None:
    scalars = {"fmin": np.asarray(50.0, np.float32), "fmax": np.asarray(900.0, np.float32)}
    assert batch_rows(scalars) == 0 and request_rows(scalars) == 1
    assert batch_rows({}) == request_rows({}) == 0
    rows = {"fmin": np.asarray(50.0, np.float32), "audio": np.zeros((3, 8), np.float32)}
    assert batch_rows(rows) == request_rows(rows) == 3


def test_a_rank_0_answer_to_scalars_alone_is_one_row_per_sample() -> None:
    log = RequestLog()
    for value in (50.0, 60.0):
        log.record({"fmin": np.asarray(value, np.float32)}, {"f0": np.asarray(1.0, np.float32)})
    assert log.rows == [1, 1]
    assert log.per_request() == []
