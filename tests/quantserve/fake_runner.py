"""A stand-in for `serving.triton_runner.TritonRunner` shared by the `infer` tests: no server, no inputs; what it
answers comes from the `quantserve.runner.run_batches` each test puts in its place. Imported as a plain module (pytest
puts this folder on the path, as `tests/loadtest/loadtest_models.py`)."""

from __future__ import annotations

from typing import Any


class FakeRunner:
    """Takes any `TritonRunner` arguments; a model of batches up to 8 and no named inputs."""

    max_batch_size = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> FakeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def input_specs(self) -> list[Any]:
        return []
