"""A whole request of --unbatched data holds a rank-0 input as a 0-d array, not a numpy scalar.

`data[row]` of an (N,) array is a numpy scalar, which ONNX Runtime refused ("Unable to handle object of type
<class 'numpy.float32'>"): swift-f0's fmin and fmax, built with `optimize --unbatched`, could not run at all.
"""

from __future__ import annotations

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, batch_rows, check_against
from quantserve.runner import RequestLog


def test_a_whole_request_holds_a_rank_0_input_as_a_0_d_array() -> None:
    arrays = {"audio": np.zeros((3, 1, 8), np.float32), "fmin": np.array([1, 2, 3], np.float32)}
    data = TensorData(arrays, unbatched=True)
    check_against("d.npz", data, [TensorSpec("audio", "float32", (1, "n")), TensorSpec("fmin", "float32", ())])
    assert data.requests.whole
    requests = list(data.batches(8))
    assert [type(request["fmin"]) for request in requests] == [np.ndarray] * 3
    assert [request["fmin"].shape for request in requests] == [()] * 3
    assert [float(request["fmin"]) for request in requests] == [1.0, 2.0, 3.0]
    assert data.request(1)["audio"].shape == (1, 8)


def test_the_rows_of_a_request_whose_first_input_is_rank_0_are_read_from_the_next() -> None:
    """len() of the first input raised "len() of unsized object" where a rank-0 input came first in the file."""
    request = {"fmin": np.asarray(np.float32(1)), "audio": np.zeros((1, 8), np.float32)}
    assert batch_rows(request) == 1 and batch_rows({"fmin": request["fmin"]}) == 0 and batch_rows({}) == 0
    log = RequestLog()
    log.record(request, {"y": np.zeros((1, 4), np.float32)})
    assert log.rows == [1]
