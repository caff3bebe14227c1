"""`loadtest --model M` for a model not served says why at once, as evaluate and infer do, and waits for a load.

Measured (session 58): for a model Triton listed UNAVAILABLE with a reason (an onnxruntime config asking for a GPU),
evaluate and infer printed Triton's reason, but loadtest said only "model 'gpu' is not ready on … (ready: …)"; and
for one still loading it refused at once where evaluate waited. A model the server does not list keeps the old line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_triton_client import FakeTritonClient

import serving.client
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.step_checks import check_model_ready
from quantserve.errors import QuantserveError


class Reached(Exception):
    pass


def _client(answer: tuple[str | None, bool], waited: list[str]) -> type:
    class NotReady(FakeTritonClient):
        def is_model_ready(self, model: str) -> bool:
            return False

        def ready_models(self) -> list[str]:
            return ["other"]

        def not_served_because(self, model: str) -> tuple[str | None, bool]:
            return answer

        def wait_model_ready(self, model: str, timeout_s: float = 60.0) -> None:
            waited.append(model)

        def model_metadata(self, model: str, version: str = "") -> Any:
            raise Reached

    return NotReady


@pytest.mark.parametrize(
    ("answer", "expected", "said"),
    [
        (("127.0.0.1:1: model 'm' is unavailable: no GPU", False), QuantserveError, "model 'm' is unavailable: no GPU"),
        ((None, False), QuantserveError, "model 'm' is not ready on 127.0.0.1:1 (ready: other)"),
        ((None, True), Reached, ""),
    ],
)
def test_a_model_not_ready_is_refused_with_the_reason_or_waited_for(
    answer: tuple[str | None, bool], expected: type, said: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waited: list[str] = []
    monkeypatch.setattr(serving.client, "TritonGrpcClient", _client(answer, waited))
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(1), 1.0)
    with pytest.raises(expected) as raised:
        check_model_ready(settings)
    assert said in str(raised.value)
    assert waited == (["m"] if expected is Reached else []), "waited only where a load may still come"
