"""The serving settings a deploy leaves out, kept from the model's config there now, and named as flags.

One config serves every version of a model, so a deploy without --max-batch, --instances, the queue bounds or the
live versions would reset them to the defaults in silence (sessions 40, 41, 56). `quantserve deploy` fills each flag
left out (None) from that config here, before anything is written, and says which it kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError


def keep_serving_settings(args: argparse.Namespace, model_dir: Path, unbatched: bool) -> list[str]:
    """Fill the serving flags left out (None) from the model's config there now, and say which, as flags: one config
    serves every version, and a new version deployed without them reset it to the defaults in silence (the README's
    own step by step took the demo's model from max batch 64 to 32, 2 instances to 1, session 40); so did the live
    versions and a bounded queue (session 41). A build made with --unbatched keeps only the instance count and the
    live versions; so does an explicit --max-batch 0. A rollback's pinned version is not kept: the new one is served."""
    from serving.model_config import CONFIG_NAME, parse_config

    path = model_dir / CONFIG_NAME
    if not path.is_file():
        return []
    served = parse_config(path)
    kept = []
    if args.instances is None:
        args.instances = sum(int(group.get("count", 1)) for group in served.get("instance_group", [])) or 1
        kept.append(f"--instances {args.instances}")
    was = int(served.get("max_batch_size", 0) or 0)
    if was == 0 and args.max_batch is None and not unbatched:
        kept += _keep_no_batching(args, model_dir.name)
    if not (unbatched or was <= 0 or args.max_batch == 0):
        kept += _keep_batching(args, served, was)
        kept += _keep_ragged_batching(args, served)
    latest = served.get("version_policy", {}).get("latest")
    if args.live_versions is None and latest is not None:
        args.live_versions = int(latest.get("num_versions", 1) or 1)
        kept.append(f"--live-versions {args.live_versions}")
    return kept


def _keep_no_batching(args: argparse.Namespace, name: str) -> list[str]:
    """`keep_serving_settings` of a config served with max_batch_size 0 (no batching, no row limit: a tune winner's
    "no batching"): kept, as the other settings are. A deploy with no --max-batch wrote 32 over it in silence, and a
    100-row request version 1 answered was then refused (session 56). A batching flag with it is refused: there is no
    batcher to take it, and the words would otherwise blame a --max-batch 0 nobody gave."""
    for flag, value in (("--max-queue-delay-us", args.max_queue_delay_us), ("--preferred-batch", args.preferred_batch)):
        if value:
            raise QuantserveError(
                f"{flag}: '{name}' is served with max_batch_size 0 (no batching), which a deploy without --max-batch "
                "keeps; give --max-batch N as well to batch (with --allow-interface-change: requests of more than N "
                "rows would then be refused)"
            )
    args.max_batch = 0
    return ["--max-batch 0"]


def _keep_ragged_batching(args: argparse.Namespace, served: dict[str, Any]) -> list[str]:
    """`keep_serving_settings`' ragged batching: pad where the config pads and no flag was given (group is the
    default anyway, so it is not named)."""
    value = served.get("parameters", {}).get("ragged_batching", {})
    if args.ragged_batching is None and isinstance(value, dict) and value.get("string_value") == "pad":
        args.ragged_batching = "pad"
        return ["--ragged-batching pad"]
    return []


def _keep_batching(args: argparse.Namespace, served: dict[str, Any], was: int) -> list[str]:
    """`keep_serving_settings` of a batched config: max batch, preferred sizes, queue delay and queue bounds."""
    kept = []
    batching = served.get("dynamic_batching")
    if args.max_batch is None:
        args.max_batch = was
        kept.append(f"--max-batch {was}")
        preferred = [int(size) for size in (batching or {}).get("preferred_batch_size", [])]
        if args.preferred_batch is None and preferred:
            args.preferred_batch = preferred
            kept.append(f"--preferred-batch {','.join(map(str, preferred))}")
    if args.max_queue_delay_us is None and batching is not None:
        args.max_queue_delay_us = int(batching.get("max_queue_delay_microseconds", 0) or 0)
        kept.append(f"--max-queue-delay-us {args.max_queue_delay_us}")
    queue = (batching or {}).get("default_queue_policy", {})
    for flag, field, key in (
        ("--max-queue-size", "max_queue_size", "max_queue_size"),
        ("--queue-timeout-us", "queue_timeout_us", "default_timeout_microseconds"),
    ):
        if getattr(args, field) is None and int(queue.get(key, 0) or 0) > 0:
            setattr(args, field, int(queue[key]))
            kept.append(f"{flag} {getattr(args, field)}")
    return kept
