"""How a data file's samples become requests (kept free of Locust so it imports anywhere)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from loadtest.request_shapes import ServedInputs, as_served, shape_problem
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

ATTENTION_MASK = "attention_mask"
# Distinct requests a run builds (of one size, or shared among a trace's sizes), which the users cycle over: every
# row of a 2 M-row file built as a request held the users past their 80 s start (1.4 GB); ~80 µs a request on 2 busy
# cores, 3 inputs each: ~1 s.
MAX_REQUESTS = 4096


def trim_padding(batch: dict[str, np.ndarray], served: ServedInputs | None = None) -> dict[str, np.ndarray]:
    """Cut token inputs to the request's own length: drop trailing columns where `attention_mask` is 0.

    Data files of token ids are padded to one width; real clients send each request at its own
    length, and that mixed-length traffic is what Triton's ragged batching must join. Only where the
    served model takes every padded input at any length on that axis (-1; `served` None: the caller
    knows it does): a model of fixed length 16 refused every cut request ("Expected [-1,16], got [1,8]").
    """
    mask = batch.get(ATTENTION_MASK)
    if mask is None or mask.ndim != 2:
        return batch
    width = mask.shape[1]
    padded = [k for k, v in batch.items() if v.ndim >= 2 and v.shape[1] == width]
    if served is not None and not all(served.dynamic(k, 1) for k in padded):
        return batch
    used = np.flatnonzero(mask.any(axis=0))
    length = int(used[-1]) + 1 if used.size else 1
    return {k: v[:, :length] if k in padded else v for k, v in batch.items()}


def request_limit(sizes: Collection[int]) -> int:
    """How many distinct requests of each size a run builds: `MAX_REQUESTS` shared among its sizes (a trace may
    name thousands), at least one of each."""
    return max(1, MAX_REQUESTS // max(1, len(sizes)))


def request_starts(rows: int, request_batch: int, limit: int = MAX_REQUESTS) -> np.ndarray:
    """The first row of each request of `request_batch` rows: every whole one in the file, or `limit` of them taken
    evenly across it where it holds more (its head alone is one kind of row where the file is sorted)."""
    count = rows // request_batch
    picked = np.arange(min(count, limit), dtype=np.int64)
    if count > limit:
        picked = picked * count // limit
    return picked * request_batch


def request_batches(
    data: TensorData, request_batch: int, served: ServedInputs | None, limit: int = MAX_REQUESTS
) -> list[dict[str, np.ndarray]]:
    """The data's samples as requests of `request_batch` each (the file repeated where it holds fewer, a last
    partial one dropped, at most `limit` of them: `request_starts`), padding trimmed where the served model allows it
    (not at all where it is unknown). Views of the data: no row is copied."""
    if len(data) < request_batch:
        data = TensorData({k: np.resize(v, (request_batch, *v.shape[1:])) for k, v in data.arrays.items()})
    starts = request_starts(len(data), request_batch, limit).tolist()
    batches = [{k: v[s : s + request_batch] for k, v in data.arrays.items()} for s in starts]
    return [trim_padding(batch, served) for batch in batches] if served is not None else batches


def sample_note(source: Path | str, rows: int, sizes: Collection[int]) -> str | None:
    """One line where a large data file's requests are a sample of it (`request_limit`): how many of its rows are
    sent; or where a request takes more samples than the file has rows; None where every whole request of the file
    is built."""
    if rows and max(sizes) > rows:  # `request_batches` repeats the file to fill a request: said, not silent
        return (
            f"--data {source}: {rows} rows, fewer than a request of {max(sizes)} samples takes: each request repeats "
            "the file's rows to fill it (the server sees the same samples again)"
        )
    limit = request_limit(sizes)
    if all(rows // size <= limit for size in sizes):
        return None
    used = max(min(rows // size, limit) * size for size in sizes)
    each = (
        f"{limit} requests of {_samples(next(iter(sizes)))}"
        if len(sizes) == 1
        else f"at most {limit} requests of each size"
    )
    return (
        f"--data {source}: {'up to ' if len(sizes) > 1 else ''}{used} of its {rows} rows are sent: {each} taken evenly "
        f"across the file, which the users cycle over (a run builds at most {MAX_REQUESTS} distinct requests)"
    )


def check_sent_shapes(data: TensorData, sizes: Collection[int], served: ServedInputs, flag: str) -> None:
    """Refuse, before any load, requests the served model would refuse every one of: the requests of each size in
    `sizes`, built and shaped as the Locust users build them (`request_batches`, `request_limit`), each distinct shape
    checked once against the dims of the model's config. The data alone passed a check while Triton refused the
    requests made of it (1-D flags to a max_batch_size 0 model); every row of a 2 M-row file checked as a request of
    its own took 165 s."""
    limit = request_limit(sizes)
    for size in sizes:
        checked: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()
        for batch in request_batches(data, size, served, limit):
            request = as_served(batch, served)
            shapes = tuple((name, array.shape) for name, array in request.items())
            if shapes in checked:
                continue
            checked.add(shapes)
            found = shape_problem(request, served)
            if found is not None:
                raise QuantserveError(_refusal(flag, size, request, served, *found))


def _refusal(
    flag: str, size: int, request: dict[str, np.ndarray], served: ServedInputs, name: str, expected: tuple[int, ...]
) -> str:
    sent = request[name].shape
    rows = expected[0] if expected and not served.batched and len(sent) == len(expected) else -1
    only_rows = rows > 0 and all(w in (-1, g) for w, g in zip(expected[1:], sent[1:], strict=True))
    advice = f"give data whose '{name}' fits those dims"
    if only_rows:
        advice = f"pass --request-batch {rows}" if flag == "--request-batch" else f"send {_samples(rows)} per request"
    return (
        f"{flag}: requests of {_samples(size)} would send input '{name}' as {list(sent)}, but model '{served.model}' "
        f"takes {list(expected)} (max_batch_size {served.max_batch_size}); Triton would refuse every one: {advice}"
    )


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


GRPC_MAX_MESSAGE = 2**31 - 1  # gRPC's hard limit on one message, whatever the channel options say
MESSAGE_OVERHEAD = 1 << 20  # room for the request's own fields beside the tensors


def check_request_size(
    source: Path | str, data: TensorData, batch_size: int, max_batch: int, flag: str = "--batch-size"
) -> None:
    """Refuse requests over gRPC's 2 GiB message limit before sending any: 176 images of 3×1024² (2.2 GB) failed
    after 23 s at 10.9 GB of memory with gRPC's own message and no fix named."""
    if not len(data):
        return
    row_bytes = sum(int(np.asarray(array[:1]).nbytes) for array in data.arrays.values())
    rows = min(batch_size, max_batch) if max_batch > 0 else batch_size
    limit = GRPC_MAX_MESSAGE - MESSAGE_OVERHEAD
    if rows * row_bytes <= limit:
        return
    fit = limit // row_bytes
    advice = f"pass {flag} {fit} or less" if fit else "no request of even one row fits"
    raise QuantserveError(
        f"{source}: a request of {rows} rows is {rows * row_bytes / 1e9:.2f} GB, over gRPC's 2 GiB message "
        f"limit; {advice}"
    )
