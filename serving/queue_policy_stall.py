"""A Triton defect that makes every `default_queue_policy` harmful on the Triton we serve with, and deploy's line
about it.

Triton 2.51 (the server inside the `nvidia-pytriton` wheel, and NGC `tritonserver:24.10`, the Dockerfile's base)
turns the dynamic batcher's payload prefetching off as soon as a model's `default_queue_policy` sets any of
`max_queue_size`, `default_timeout_microseconds` or `allow_timeout_override`; without prefetching, dispatch waits on
a waiting-consumer count that drifts down each time queued payloads are merged (triton-inference-server/server#8870,
still open; fixed by triton-inference-server/core#509, merged upstream in 2026, long after 2.51). The batcher then
sleeps its default 0.5 s with requests queued.

Measured here on one server, five identical models side by side, 3 rounds alternating, closed loop (a 32→10 MLP,
embedded target, max batch 8): no policy 1277–1505 req/s at 1 client and 0 failures; `max_queue_size 64` alone
21–477 req/s, requests stalled 0.5 s, never refused; a 100 ms timeout (alone or with the size) 16–828 req/s and 3–6
requests per 3 s refused as "Request timeout expired" after 501 ms with at most one request queued;
`allow_timeout_override` alone 70–981 req/s, 0.5 s stalls. Still so after the load stopped. An open loop of 500
req/s (a third of capacity) showed none of it; 80 req/s at a 50 ms/request model did: 175 executions in 9 s without a
policy, 17–18 with queue 4 + 200 ms timeout, 20–24 with queue 4 alone.
"""

from __future__ import annotations

import sys

from serving.model_config import QueuePolicy

TRITON_ISSUE = "triton-inference-server/server#8870"
TRITON_FIX = "triton-inference-server/core#509"


def queue_policy_warning(queue: QueuePolicy) -> str | None:
    """The one line deploy prints when it writes a queue policy (any bound: Triton 2.51 stalls on each, see the
    module docstring), naming the flags given, the issue and what to do instead; None when it writes none."""
    if not queue.bounded:
        return None
    flags = " ".join(
        f"{flag} {value}"
        for flag, value in (("--max-queue-size", queue.max_queue_size), ("--queue-timeout-us", queue.timeout_us))
        if value
    )
    return (
        f"warning: {flags} writes a default_queue_policy, and on Triton 2.51 (the embedded server, NGC 24.10) any "
        "queue policy stalls the dynamic batcher 0.5 s at a time with the queue near empty (measured at 1 client: "
        "1300 → 21–830 req/s, and with a timeout requests refused as 'Request timeout expired'; "
        f"{TRITON_ISSUE}); on this Triton deploy without them and bound the load in front of the server (client "
        f"deadlines, a proxy's concurrency limit), or serve with a Triton that includes {TRITON_FIX}"
    )


def warn_queue_policy(queue: QueuePolicy) -> None:
    """Print `queue_policy_warning` to stderr where there is one (deploy's command, once it wrote the config)."""
    warning = queue_policy_warning(queue)
    if warning:
        print(warning, file=sys.stderr, flush=True)
