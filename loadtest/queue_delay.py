"""The model's dynamic-batching queue delay beside the client's deadline (--request-timeout).

Measured (issue 11, session 31): a model deployed with max_queue_delay 2 s and preferred batches of 4 to 32, loaded
by 2 users with `--request-timeout 1`: Triton held each request up to 2 s for a batch two users never fill, and every
request failed by the client's 1 s deadline. The note then advised fewer samples a request and a longer --duration;
the cause was the queue delay, which loadtest reads from the model's config before the run.
"""

from __future__ import annotations

from typing import Any


def max_queue_delay_s(config: dict[str, Any]) -> float | None:
    """The config's dynamic_batching max_queue_delay in seconds (Triton's get_model_config as JSON writes the
    microseconds as text); None without dynamic batching or a delay."""
    batching = config.get("dynamic_batching")
    if not isinstance(batching, dict):
        return None
    try:
        delay_us = float(batching.get("max_queue_delay_microseconds") or 0)
    except (TypeError, ValueError):
        return None
    return delay_us / 1e6 if delay_us > 0 else None


def within_queue_delay(timeout_s: float | None, delay_s: float | None) -> bool:
    """Whether the client gives up on a request no later than Triton may hold it in its queue for a batch."""
    return timeout_s is not None and delay_s is not None and timeout_s <= delay_s


def queue_delay_note(model: str, timeout_s: float, delay_s: float | None) -> str | None:
    """Said before the run where --request-timeout is at or below the model's queue delay: requests fail unless
    enough arrive at once to fill a preferred batch before the delay runs out."""
    if not within_queue_delay(timeout_s, delay_s):
        return None
    return (
        f"--request-timeout {timeout_s:g} s is at or below model {model}'s max_queue_delay of {delay_s:g} s: "
        "Triton holds a request up to that long to fill a preferred batch, so where too few requests arrive to fill "
        f"one they fail by the client's deadline; raise --request-timeout above {delay_s:g} s"
    )


def queue_delay_cause(delay_s: float) -> str:
    """The deadline note's cause and way out where the client's deadline is within the queue delay."""
    return (
        f"the deadline is at or below the model's max_queue_delay of {delay_s:g} s, which Triton holds a request up "
        f"to for a preferred batch that too few requests fill; raise --request-timeout above {delay_s:g} s (or load "
        "with more users)"
    )
