"""A request that takes the model's process down is sent once more after serve's reload, not again and again.

Measured (session 54): `infer` of 1 024 000 rows on the demo's model (max batch 2 000 000) grew the Python model's
process to 20 GB; the kernel killed it, serve reloaded the model, and the runner, which waits out such a reload and
sends the request again (session 46: a stub killed by something else mid-evaluate), sent it again, and the kernel
killed it again: 312 s, then "[StatusCode.INTERNAL] Failed to obtain the health mutex", nothing naming the death.
The server's answers are scripted here: what is judged is the runner's reading of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantserve.errors import QuantserveError
from serving.triton_runner import TritonRunner

DIED = "[StatusCode.INTERNAL] Failed to obtain the health mutex"


class _Dies:
    """A gRPC client whose every request fails as Triton answers one whose model process died under it."""

    def __init__(self) -> None:
        self.requests = 0

    def infer(self, *_: object, **__: object) -> dict[str, np.ndarray]:
        self.requests += 1
        raise QuantserveError(f"inference on 'm' failed: {DIED}")


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch) -> TritonRunner:
    r = TritonRunner("127.0.0.1:1", "m", version="1")
    r._client = _Dies()  # type: ignore[assignment]
    r._max_batch = 8
    monkeypatch.setattr(TritonRunner, "_server_gone", lambda self: False)
    monkeypatch.setattr(TritonRunner, "_version_ready", lambda self: False)
    monkeypatch.setattr(TritonRunner, "_back_after_reload", lambda self: True)  # serve reloaded it each time
    return r


def test_a_request_the_instance_dies_on_twice_is_given_up_naming_the_death_and_the_size(runner: TritonRunner) -> None:
    with pytest.raises(QuantserveError) as raised:
        runner.infer_impl({"x": np.zeros((6, 4), np.float32)})
    assert runner._client.requests == 2  # type: ignore[union-attr]
    assert str(raised.value) == (
        f"inference on 'm' failed: {DIED} (the model's process died while answering it: serve's output says why) "
        "(the request held rows 1–6 of the data, sent as input 'x' [6, 4]): model 'm' version 1 went down while "
        "answering this request, and again when it was sent once more after serve reloaded it: a request of 6 rows "
        "may be more than the model's process can hold; send fewer rows per request"
    )


def test_a_death_is_named_where_nothing_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    r = TritonRunner("127.0.0.1:1", "m")
    r._client = _Dies()  # type: ignore[assignment]
    monkeypatch.setattr(TritonRunner, "_server_gone", lambda self: False)
    with pytest.raises(QuantserveError, match=r"health mutex \(the model's process died while answering it"):
        r.infer_impl({"x": np.zeros((2, 4), np.float32)})
    assert r._client.requests == 1  # type: ignore[union-attr]
