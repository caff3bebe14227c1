"""`evaluate`'s runner waits out serve's reload of the version it pins (session 46: a stub killed mid-evaluate was
"a deploy or rollback meanwhile?; answers of two versions would be mixed, so none count" after 2361 rows, though the
same version 1 served again 2.3 s later). The server's answers are scripted here: what is judged is the runner's
reading of them (`TritonRunner._back_after_reload`)."""

from __future__ import annotations

from typing import Any

import pytest

from serving import triton_runner
from serving.triton_runner import TritonRunner


class _Scripted:
    """Readiness and index answers in order, as a TritonGrpcClient gives them."""

    def __init__(self, states: list[str]) -> None:
        self.states = states

    def __enter__(self) -> _Scripted:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def is_model_ready(self, model: str, version: str = "") -> bool:
        return self.states[0] == "READY"

    def repository_index(self) -> list[dict[str, Any]]:
        return [{"name": "m", "version": "1", "state": self.states.pop(0)}]


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch) -> TritonRunner:
    monkeypatch.setattr(triton_runner.time, "sleep", lambda _s: None)
    r = TritonRunner("127.0.0.1:1", "m", version="1")
    return r


def test_a_version_unloaded_and_loaded_again_is_waited_for(
    runner: TritonRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _Scripted(["UNLOADING", "UNLOADING", "LOADING", "LOADING", "READY"])
    monkeypatch.setattr(triton_runner, "TritonGrpcClient", lambda *a, **k: script)
    assert runner._back_after_reload()


def test_a_version_that_stays_unavailable_is_gone(runner: TritonRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(k) * 0.3 for k in range(100))
    monkeypatch.setattr(triton_runner.time, "monotonic", lambda: next(clock))
    script = _Scripted(["UNAVAILABLE"] * 50)
    monkeypatch.setattr(triton_runner, "TritonGrpcClient", lambda *a, **k: script)
    assert not runner._back_after_reload()
    assert len(script.states) > 40  # judged gone within about SETTLE_S, not after RELOAD_WAIT_S
