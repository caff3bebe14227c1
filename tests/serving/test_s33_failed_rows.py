"""A request the server failed names its rows in the data: `infer --data bad.npz` said "inference on 'mlp2' failed:
... idx=1000 must be within the inclusive range [-100,99]" and left the user to search every row for the bad one."""

from __future__ import annotations

import numpy as np
import pytest

from quantserve.errors import QuantserveError
from serving.reshaped import Reshapes
from serving.triton_runner import TritonRunner

FAILURE = "127.0.0.1:1: inference on 'mlp2' failed: [StatusCode.INTERNAL] ... idx=1000 must be within [-100,99]"


class FailingSecond:
    """A gRPC client stand-in that answers the first request (its input back) and fails the second."""

    def __init__(self) -> None:
        self.calls = 0

    def infer(
        self, model: str, feeds: dict[str, np.ndarray], version: str = "", reshapes: Reshapes | None = None
    ) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls == 2:
            raise QuantserveError(FAILURE)
        return {"y": feeds["x"]}


def test_a_failed_request_names_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = TritonRunner("127.0.0.1:1", "mlp2")
    runner._client = FailingSecond()  # type: ignore[assignment]
    monkeypatch.setattr(runner, "_server_gone", lambda: False)
    batch = {"x": np.zeros((32, 4), dtype=np.float32)}
    runner.infer_impl(batch)
    with pytest.raises(QuantserveError) as failed:
        runner.infer_impl(batch)
    # and the shapes sent (session 53): a runtime's "Invalid input shape: {0}" names neither input nor length
    assert str(failed.value) == f"{FAILURE} (the request held rows 33–64 of the data, sent as input 'x' [32, 4])"
