"""Triton's own answer that it does not serve a model or version (`UNAVAILABLE: Request for unknown model: 'm' version 2
is not at ready state`, in milliseconds) is not sent again: the client retried it up to 20 times within the request
timeout, and evaluate named a rollback ~21 s late. A connection that failed is still retried."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tritonclient.utils import InferenceServerException

from serving.call_failures import RetryPolicy, call_with_retry

QUICK = RetryPolicy(deadline_s=30.0, initial_s=0.001, max_s=0.001, max_attempts=3)


def failing(message: str, calls: list[float]) -> Callable[[float], Any]:
    def call(timeout_s: float) -> Any:
        calls.append(timeout_s)
        raise InferenceServerException(message, status="StatusCode.UNAVAILABLE")

    return call


@pytest.mark.parametrize(
    "message",
    [
        "Request for unknown model: 'm' version 2 is not at ready state",
        "Request for unknown model: 'm' is not found",
        "Request for unknown model: 'm' has no available versions",
    ],
)
def test_the_server_saying_it_does_not_serve_the_model_is_not_retried(message: str) -> None:
    calls: list[float] = []
    with pytest.raises(InferenceServerException, match="Request for unknown model"):
        call_with_retry(failing(message, calls), QUICK, 5.0)
    assert len(calls) == 1


def test_a_connection_that_failed_is_still_retried() -> None:
    calls: list[float] = []
    with pytest.raises(InferenceServerException):
        call_with_retry(failing("failed to connect to all addresses", calls), QUICK, 5.0)
    assert len(calls) == 3
