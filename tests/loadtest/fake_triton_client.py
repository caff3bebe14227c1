"""A stand-in for `serving.client.TritonGrpcClient` shared by the load-test tests that check a model before a run
(`loadtest.harness.check_ready`): no server; every model ready and answering the inputs and config a test gives it.
A test sets it in the client's place (`monkeypatch.setattr(serving.client, "TritonGrpcClient", ...)`), subclassing it
for a server that answers otherwise. Imported as a plain module (pytest puts this folder on the path, as
`loadtest_models`)."""

from __future__ import annotations

from typing import Any, ClassVar

from quantserve.artifact import TensorSpec


class FakeTritonClient:
    """Takes any `TritonGrpcClient` arguments; a live server where every model is ready, of `inputs` and `config`."""

    inputs: ClassVar[list[TensorSpec]] = []
    config: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> FakeTritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def is_server_live(self) -> bool:
        return True

    def is_model_ready(self, model: str) -> bool:
        return True

    def model_metadata(self, model: str, version: str = "") -> Any:
        return self.inputs, []

    def model_config(self, model: str) -> dict[str, Any]:
        return self.config


def served_model(inputs: list[TensorSpec], config: dict[str, Any]) -> type[FakeTritonClient]:
    """A `FakeTritonClient` class whose every model takes `inputs` (its metadata, no outputs) under `config`."""
    return type("Served", (FakeTritonClient,), {"inputs": inputs, "config": config})
