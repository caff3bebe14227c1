"""Deploy's numbers checked before anything is read or written: one that cannot be meant is one line naming its flag.

Triton takes a max queue delay of any uint64 µs: a deploy with 10^12 µs held each request of a quiet server for
days, and the server looked hung. Others would fail only in the protobuf writer, naming a field, not the flag.
"""

from __future__ import annotations

from collections.abc import Sequence

from quantserve.errors import QuantserveError

# Ceilings on values that cannot be meant. Triton takes any uint64 delay: one of hours held every request of a
# quiet server that long, and it looked hung. 128 instances is far beyond what one server's cores or memory run.
MAX_QUEUE_DELAY_US = 10_000_000  # 10 s
MAX_QUEUE_TIMEOUT_US = 3_600_000_000  # 1 hour
MAX_INSTANCES = 128
INT32_MAX = 2**31 - 1  # Triton's max_batch_size, max_queue_size and num_versions are int32 fields
DEFAULT_QUEUE_DELAY_US = 500  # deploy's --max-queue-delay-us when it is not given (serving.deploy.deploy's default)


def check_numbers(
    max_batch: int,
    max_queue_delay_us: int,
    preferred: Sequence[int] | None,
    instances: int,
    queue: tuple[int, int] = (0, 0),
    live_versions: int = 1,
) -> None:
    """Refuse a number that cannot be meant, in one line naming its flag and value, before anything is read or
    written (Triton would take most of them, or the protobuf writer fail on them naming a field, not the flag).
    `queue`: (max queue size, timeout µs), as the command line gives them (a `QueuePolicy` checks itself)."""
    _check_batching(max_batch, max_queue_delay_us, preferred)
    if instances < 1:
        raise QuantserveError(f"--instances {instances}: instance count must be ≥ 1")
    if instances > MAX_INSTANCES:
        raise QuantserveError(
            f"--instances {instances}: above {MAX_INSTANCES}; each instance is a copy of the model in memory (on the "
            "embedded target a process of its own), and a server asked for this many would not come up"
        )
    _check_queue(*queue)
    _at_least(1, live_versions, "--live-versions", "(the newest version at least)")
    _at_most(INT32_MAX, live_versions, "--live-versions", "the most Triton's num_versions holds")


def _check_batching(max_batch: int, max_queue_delay_us: int, preferred: Sequence[int] | None) -> None:
    _at_least(0, max_batch, "--max-batch", "(0: no batching)")
    _at_most(INT32_MAX, max_batch, "--max-batch", "the most Triton's max_batch_size holds")
    _at_least(0, max_queue_delay_us, "--max-queue-delay-us", "µs (0: no waiting)")
    if max_queue_delay_us > MAX_QUEUE_DELAY_US:
        raise QuantserveError(
            f"--max-queue-delay-us {max_queue_delay_us}: above 10 s ({MAX_QUEUE_DELAY_US} µs); the dynamic batcher "
            "holds a request up to this long waiting for others to batch with, so a quiet server would look hung"
        )
    if preferred is not None and any(size < 1 for size in preferred):
        raise QuantserveError(f"--preferred-batch {','.join(map(str, preferred))}: preferred batch sizes must be ≥ 1")


def check_delay_batched(max_batch: int, max_queue_delay_us: int | None, unbatched_build: bool) -> None:
    """Refuse a --max-queue-delay-us given (None: left out, the default) with a non-zero delay where the deployment's
    max_batch_size is 0: no dynamic batcher is written, so the delay was dropped without a word, while
    --preferred-batch on the same deploy was refused. `unbatched_build`: made with `optimize --unbatched`."""
    if max_batch or not max_queue_delay_us:
        return
    why = "the build was made with optimize --unbatched" if unbatched_build else "--max-batch 0"
    instead = "leave it out" if unbatched_build else "leave it out, or deploy with --max-batch > 0"
    raise QuantserveError(
        f"--max-queue-delay-us {max_queue_delay_us}: max_batch_size is 0 ({why}), so no dynamic batcher holds "
        f"requests and the delay would be dropped; {instead}"
    )


def _check_queue(max_queue_size: int, timeout_us: int) -> None:
    _at_least(0, max_queue_size, "--max-queue-size", "(0: unbounded)")
    _at_most(INT32_MAX, max_queue_size, "--max-queue-size", "the most Triton's max_queue_size holds")
    _at_least(0, timeout_us, "--queue-timeout-us", "µs (0: never)")
    if timeout_us > MAX_QUEUE_TIMEOUT_US:
        raise QuantserveError(
            f"--queue-timeout-us {timeout_us}: above 1 hour ({MAX_QUEUE_TIMEOUT_US} µs); a client has long "
            "given up on a request queued that long (0: no timeout)"
        )


def _at_least(low: int, value: int, flag: str, meaning: str) -> None:
    if value < low:
        raise QuantserveError(f"{flag} {value}: below {low} {meaning}")


def _at_most(high: int, value: int, flag: str, why: str) -> None:
    if value > high:
        raise QuantserveError(f"{flag} {value}: above {high}, {why}")
