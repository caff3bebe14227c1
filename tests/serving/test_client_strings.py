"""String inputs go over gRPC as Triton BYTES, from numpy bytes (S) or str (U) arrays (no server needed here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor

from serving.client import TritonGrpcClient


class _Result:
    def get_response(self, as_json: bool = False) -> dict[str, Any]:
        return {"outputs": [{"name": "y"}]}

    def as_numpy(self, name: str) -> np.ndarray:
        return np.array([[b"ok"]], dtype=object)


@pytest.mark.parametrize("strings", [np.array([[b"a"], [b"bb"]]), np.array([["a"], ["h\u00e9llo"]])])
def test_bytes_and_str_arrays_are_sent_as_bytes(strings: np.ndarray) -> None:
    """A str (U) array was refused by tritonclient (no Triton datatype for it); it goes as UTF-8 bytes."""
    sent: list[Any] = []
    client = TritonGrpcClient("127.0.0.1:1", timeout_s=1)
    client._client.infer = lambda model, inputs, **_: sent.extend(inputs) or _Result()
    assert client.infer("strin", {"x": strings}, reshapes={})["y"][0, 0] == b"ok"  # its config said: none reshaped
    tensor = sent[0]
    assert tensor.datatype() == "BYTES" and tensor.shape() == [2, 1]
    expected = [s.encode() if isinstance(s, str) else s for s in strings.ravel().tolist()]
    assert list(deserialize_bytes_tensor(tensor._get_content())) == expected
    client.close()
