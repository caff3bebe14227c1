"""A model whose readiness check went unanswered within 5 s (tritonserver paused by SIGSTOP, then resumed) was
refused as "model 'm' is not ready on … (ready: m)", a line that contradicts itself (session 41): a model ready
when asked again is loaded; one not among the ready models is still refused, naming those that are."""

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


def _client(ready: list[str]) -> type:
    class Paused(FakeTritonClient):
        def is_model_ready(self, model: str) -> bool:
            return False  # its answer did not come within the timeout

        def ready_models(self) -> list[str]:
            return ready

        def not_served_because(self, model: str) -> tuple[str | None, bool]:
            return None, False  # listed with no reason, no load to come

        def model_metadata(self, model: str, version: str = "") -> Any:
            raise Reached

    return Paused


@pytest.mark.parametrize(("ready", "expected"), [(["m", "other"], Reached), (["other"], QuantserveError)])
def test_a_model_ready_when_asked_again_is_taken(
    ready: list[str], expected: type, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(serving.client, "TritonGrpcClient", _client(ready))
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(1), 1.0)
    with pytest.raises(expected) as raised:
        check_model_ready(settings)
    if expected is QuantserveError:
        assert "model 'm' is not ready on 127.0.0.1:1 (ready: other)" in str(raised.value)
