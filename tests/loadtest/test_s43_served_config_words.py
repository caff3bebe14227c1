"""The report's A/B table names what sets two deployments of one model apart: preferred sizes other than deploy's
default, ragged batching and a queue policy. Measured (session 43, probe d): a run of group and one of pad both read
"max batch 16, queue 500 µs, 1 instance"."""

from __future__ import annotations

from loadtest.run_identity import served_config

BASE = {"max_batch_size": 16, "instance_group": [{"count": 1}]}


def batcher(**fields: object) -> dict[str, object]:
    return {**BASE, "dynamic_batching": {"max_queue_delay_microseconds": "500", **fields}}


def test_ragged_batching_tells_group_from_pad() -> None:
    group, pad = ({**batcher(), "parameters": {"ragged_batching": {"string_value": v}}} for v in ("group", "pad"))
    assert served_config(group) == "max batch 16, queue 500 µs, ragged group, 1 instance"
    assert served_config(pad) == "max batch 16, queue 500 µs, ragged pad, 1 instance"


def test_preferred_sizes_are_named_where_not_deploys_default() -> None:
    assert served_config(batcher(preferred_batch_size=[2, 4, 8, 16])) == "max batch 16, queue 500 µs, 1 instance"
    assert (
        served_config(batcher(preferred_batch_size=[16, 8])) == "max batch 16, queue 500 µs, preferred 8,16, 1 instance"
    )


def test_a_queue_policy_is_named() -> None:
    policy = {"max_queue_size": 64, "default_timeout_microseconds": "20000"}  # int64 arrives as a string
    assert served_config(batcher(default_queue_policy=policy)) == (
        "max batch 16, queue 500 µs, at most 64 waiting, queue timeout 20000 µs, 1 instance"
    )
