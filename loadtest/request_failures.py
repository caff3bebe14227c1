"""How a failed gRPC request is filed with Locust: tritonclient's exception prints as `InferenceServerException()`,
so Locust's failure table said nothing of why; `readable_failure` names its status and Triton's message instead.
Apart from `loadtest.grpc_user` so that module stays one concern (the users) and under the size the style asks.
"""

from __future__ import annotations


class TritonRequestFailed(Exception):
    """A failed request as Locust files it: the gRPC status and Triton's message, not an empty repr."""


def readable_failure(exc: BaseException) -> BaseException:
    """tritonclient's exception prints as `InferenceServerException()`; name its status and message instead."""
    status, message = getattr(exc, "status", None), getattr(exc, "message", None)
    if callable(status) and callable(message):
        return TritonRequestFailed(f"[{status()}] {message()}")
    return exc
