"""In-process rows of `quantserve bench`: PyTorch eager and ONNX Runtime sessions, timed in this process.

Two figures per runner:
- saturation: one caller running batches of the size the server forms, back to back (samples/s),
  on the same intra-op threads as one served instance — "batch as served";
- fixed concurrency: N Python threads sharing the one model or session, each a closed loop of
  single requests (the in-process twin of N Locust users): throughput and per-request p50/p99.
  On a shared machine N threads also win a larger share of the cores than one instance's few.
Both runners release the GIL while they compute, so the threads contend for the cores as the
requests of a server would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.percentiles import LatencySummary
from quantserve.data import TensorData

Feeds = dict[str, np.ndarray]
Infer = Callable[[Feeds], object]
WARMUP_FRACTION = 0.2  # of each concurrency window: requests finishing earlier are not counted
MIN_CALLS = 3  # a saturation window runs at least this many batches, however long they take
SATURATION_ROUNDS = 5  # turns per runner in one repeat
QUICK_SATURATION_ROUNDS = 3  # --quick: still a median of turns
MIN_ROUNDS = 4  # a concurrency window lasts at least this many requests per client (p99 of >= 64 at 16)
MAX_WINDOW_S = 40.0


def session(model: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with the project's session options (all graph optimizations).

    The same options the embedded target's Triton Python backend uses: `threads` intra-op
    threads, one inter-op thread.
    """
    import onnxruntime as ort

    from optimizer.onnxruntime_runner import session_options

    options = session_options("all", threads)
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def onnxruntime_infer(model: Path, threads: int) -> Infer:
    """`infer(feeds)` on one shared ONNX Runtime session."""
    sess = session(model, threads)
    return lambda feeds: sess.run(None, feeds)


def torch_eager_infer(module: Any, input_names: Sequence[str], threads: int) -> Infer:
    """`infer(feeds)` on the eager torch module (no_grad/inference mode, `threads` intra-op threads)."""
    import torch

    torch.set_num_threads(threads)

    def infer(feeds: Feeds) -> object:
        with torch.inference_mode():
            return module(*(torch.from_numpy(feeds[name]) for name in input_names))

    return infer


def batches_of(data: TensorData, size: int) -> list[Feeds]:
    """`data` cut into batches of `size` (repeated when it holds fewer samples than one batch)."""
    if len(data) < size:
        data = TensorData({k: np.resize(v, (size, *v.shape[1:])) for k, v in data.arrays.items()})
    whole = len(data) - len(data) % size
    return [{k: np.ascontiguousarray(v) for k, v in b.items()} for b in data.take(0, whole).batches(size)]


def saturation_throughput(infer: Infer, batches: list[Feeds], seconds: float, min_calls: int = MIN_CALLS) -> float:
    """Samples/s of one caller running `batches` back to back for about `seconds` (warm it up first)."""
    size = len(next(iter(batches[0].values())))
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < min_calls:
        infer(batches[calls % len(batches)])
        calls += 1
    return calls * size / elapsed


def saturation_rounds(infers: dict[int, Infer], batches: list[Feeds], seconds: float, rounds: int) -> dict[int, float]:
    """Each runner's median samples/s over `rounds` short turns taken in rotation.

    A shared machine's load moves within seconds; taking turns lets a busy moment hit every
    runner alike instead of one runner's whole window (as optimize's paired speed rounds do).
    """
    for infer in infers.values():
        infer(batches[0])
    figures: dict[int, list[float]] = {key: [] for key in infers}
    for _ in range(rounds):
        for key, infer in infers.items():
            figures[key].append(saturation_throughput(infer, batches, seconds / rounds, min_calls=1))
    return {key: float(np.median(values)) for key, values in figures.items()}


def concurrent_requests(infer: Infer, requests: list[Feeds], clients: int, seconds: float) -> tuple[float, list[float]]:
    """Samples/s and latencies (ms) of `clients` threads each calling `infer` on one request at a time.

    Counts only requests that finish inside the measured window: after a warm-up of
    `WARMUP_FRACTION` of `seconds`, until `seconds`. Each client's ends in a window are a closed loop's renewals:
    the request that began before the window and ends in it stands for the one that begins in it and ends after,
    so the count is unbiased and off by at most one request per client (session 56 checked a 0.4 s window of
    8 sleeping clients: no overcount). What lifts this figure over the saturation row on a shared machine is CPU
    share, not counting: N threads win more of the cores from other jobs than one caller's intra-op pool, and a
    short window catches one stretch of their load (bench_results.concurrency_doubt marks it).
    """
    size = len(next(iter(requests[0].values())))
    infer(requests[0])
    start_gate = threading.Barrier(clients + 1)
    finished: list[list[tuple[float, float]]] = [[] for _ in range(clients)]
    bounds: list[float] = []

    def client(index: int) -> None:
        start_gate.wait()
        end, call = bounds[1], index
        while (began := time.perf_counter()) < end:
            infer(requests[call % len(requests)])
            finished[index].append((began, time.perf_counter()))
            call += clients

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    bounds.extend((now + WARMUP_FRACTION * seconds, now + seconds))
    start_gate.wait()
    for thread in threads:
        thread.join()
    counted = [(b, e) for calls in finished for b, e in calls if bounds[0] <= e <= bounds[1]]
    window = bounds[1] - bounds[0]
    return len(counted) * size / window, [(e - b) * 1000.0 for b, e in counted]


def concurrency(
    infer: Infer, data: TensorData, request_batch: int, clients: int, seconds: float
) -> tuple[float, LatencySummary]:
    """Samples/s and the latency summary of `clients` threads sending single requests of `request_batch`."""
    throughput, latencies = concurrent_requests(infer, batches_of(data, request_batch), clients, seconds)
    return throughput, LatencySummary.from_samples(latencies)


def window_for(samples_per_s: float, request_batch: int, clients: int, seconds: float) -> float:
    """At least `seconds`, and long enough for MIN_ROUNDS requests per client after the warm-up (slow models)."""
    per_round = clients * request_batch / samples_per_s if samples_per_s > 0 else 0.0
    return min(max(seconds, MIN_ROUNDS * per_round / (1.0 - WARMUP_FRACTION)), MAX_WINDOW_S)
