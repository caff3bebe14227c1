"""A Triton defect that makes every `default_queue_policy` harmful on the Triton we serve with, and the line deploy
prints when it writes one and serve prints for each model it loads with one (a config edited by hand included: probed,
`max_queue_size: 2` reloaded with no word, then p99 506 ms at 2 users, the 0.5 s stall).

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
from collections.abc import Collection
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from serving.model_config import CONFIG_NAME, QueuePolicy, parse_config

TRITON_ISSUE = "triton-inference-server/server#8870"
TRITON_FIX = "triton-inference-server/core#509"
# The default_queue_policy fields that turn prefetching off (see the module docstring), as config.pbtxt spells them.
STALLING_FIELDS = ("max_queue_size", "default_timeout_microseconds", "allow_timeout_override")
# What removes a policy: a deploy without the flags keeps the config's (deploy's `keep_serving_settings`), so "redeploy
# without them" kept it (probed, session 61); explicit zeros write none, and a hand-edited policy goes with them.
REMOVE_POLICY = "redeploy with --max-queue-size 0 --queue-timeout-us 0"
KEPT_FROM_CONFIG = "(kept from the config of the version before: a queue flag left out keeps its value)"


def queue_policy_warning(queue: QueuePolicy, kept: Collection[str] = ()) -> str | None:
    """The one line deploy prints when it writes a queue policy (any bound: Triton 2.51 stalls on each, see the
    module docstring), naming its flags, those in `kept` as kept from the model's config (deploy keeps a setting left
    out: the probe's redeploy without them was told of flags nobody gave), the issue and what removes it; None when
    it writes none."""
    if not queue.bounded:
        return None
    flags = [
        (flag, f"{flag} {value}")
        for flag, value in (("--max-queue-size", queue.max_queue_size), ("--queue-timeout-us", queue.timeout_us))
        if value
    ]
    given = " ".join(words for flag, words in flags if flag not in kept)
    carried = " ".join(words for flag, words in flags if flag in kept)
    subject = " and ".join(part for part in (given, carried and f"{carried} {KEPT_FROM_CONFIG}") if part)
    return _stall_warning(f"{subject} writes a default_queue_policy", f"remove it ({REMOVE_POLICY})")


def served_queue_policy_warning(model_dir: Path) -> str | None:
    """The same line for a model `serve` loads whose config.pbtxt (deployed so, or edited by hand) carries a
    stalling default_queue_policy, naming the model and the fields set; None for none or an unreadable config
    (Triton names that one when it loads it)."""
    try:
        config = parse_config(Path(model_dir) / CONFIG_NAME)
    except QuantserveError:
        return None
    fields = stalling_fields(config)
    if not fields:
        return None
    policy = "default_queue_policy { " + " ".join(f"{name}: {value}" for name, value in fields) + " }"
    return _stall_warning(
        f"model '{Path(model_dir).name}' is served with {policy} from its {CONFIG_NAME}",
        f"remove it ({REMOVE_POLICY})",
    )


def stalling_fields(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The set fields of a parsed config's default_queue_policy that stall Triton 2.51's batcher, as written."""
    policy = config.get("dynamic_batching", {}).get("default_queue_policy", {})
    return [
        (name, str(policy[name]).lower()) for name in STALLING_FIELDS if policy.get(name) not in (None, 0, "0", False)
    ]


def _stall_warning(subject: str, remedy: str) -> str:
    return (
        f"warning: {subject}, and on Triton 2.51 (the embedded server, NGC 24.10) any "
        "queue policy stalls the dynamic batcher 0.5 s at a time with the queue near empty (measured at 1 client: "
        "1300 → 21–830 req/s, and with a timeout requests refused as 'Request timeout expired'; "
        f"{TRITON_ISSUE}); on this Triton {remedy} and bound the load in front of the server (client "
        f"deadlines, a proxy's concurrency limit), or serve with a Triton that includes {TRITON_FIX}"
    )


def warn_queue_policy(queue: QueuePolicy, kept: Collection[str] = ()) -> None:
    """Print `queue_policy_warning` to stderr where there is one (deploy's command, once it wrote the config)."""
    warning = queue_policy_warning(queue, kept)
    if warning:
        print(warning, file=sys.stderr, flush=True)
