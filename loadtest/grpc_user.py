"""Locust users that load a Triton model over gRPC (`tritonclient.grpc`) with real concurrency: what every user
shares (`_TritonClientMixin`, the prebuilt requests, the run's end when the model is gone); the closed-loop user in
`loadtest.closed_loop_user`, the open-loop user in `loadtest.open_loop_user`.

Pitfall (measured): Locust monkey-patches everything with gevent, but a gRPC call blocks in C,
so a plain call stalls the whole process (one request in flight: Triton never batches), and
`grpc.experimental.gevent.init_gevent()` with tritonclient hung. Here each blocking call runs
in a real OS thread from a gevent `ThreadPool` sized to the number of users, and the calling
greenlet waits cooperatively, so N users hold N requests in flight. Import this module only
inside a Locust process: importing locust monkey-patches the interpreter.

Second pitfall (measured: hangs at stop): gRPC's channel guards its calls with `threading`
locks, which gevent has patched; shared by several OS threads, or closed from the hub while a
thread still uses it, such a lock deadlocks. So a channel (client) is used by one OS thread at
a time — one per closed-loop user, a pool of them for open-loop arrivals — and only idle
clients are ever closed.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import numpy as np
import tritonclient.grpc as grpcclient  # imported up front: a lazy import would eat into the measured window
from gevent.threadpool import ThreadPool
from locust import events
from locust.env import Environment
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV
from tritonclient.utils import np_to_triton_dtype

from loadtest.grpc_channel import channel_args, client_tls
from loadtest.locust_options import replayed_trace
from loadtest.model_gone import RELOADING, ServedCheck, write_gone
from loadtest.recording_files import EARLY_DEADLINE, answering_version
from loadtest.request_data import MAX_REQUESTS, request_batches, request_limit, sent_lengths
from loadtest.request_failures import TritonRequestFailed, readable_failure
from loadtest.request_shapes import ServedInputs, as_served, read_served_inputs
from quantserve.data import TensorData, as_sent, load_npz, read_as_served
from serving.call_failures import reloading
from serving.declared_outputs import DeclaredOutput, declared_outputs, read_declared_outputs, wire_mismatch
from serving.response_rows import batches_requests, row_mismatch

REQUEST_TYPE = "grpc"
DEADLINE_STATUS = "StatusCode.DEADLINE_EXCEEDED"  # gRPC's status for a call past its deadline (the client's own)
READY_TIMEOUT_S = 2.0  # the model-ready question after a NOT_SERVED answer (`loadtest.model_gone`)
MODEL_GONE_MESSAGE = "quantserve_model_gone"  # a user → the master (or its own local runner): the model is gone

_thread_pool: ThreadPool | None = None
_feeds_cache: dict[tuple[str, int, str], list[Any]] = {}
_batched: dict[str, bool] = {}  # model → whether it has a batch axis (its answers' rows are checked), read once
_served: dict[str, ServedInputs] = {}  # model → the shapes its requests must have, read once before the users start
_declared: dict[str, dict[str, DeclaredOutput]] = {}  # model → its outputs as declared (answers are held to them)
_still_served = ServedCheck()  # whether the run's model (or the version it names) is still served, once asked
_environment: list[Environment] = []  # this process's, for the quit event (which is given none)
_ending: list[bool] = []  # master or local: the run is ending because the model is gone


def blocking_call_pool(extra_threads: int = 0) -> ThreadPool:
    """The process-wide pool of OS threads that run blocking gRPC calls; grows by `extra_threads`."""
    global _thread_pool
    if _thread_pool is None:
        _thread_pool = ThreadPool(maxsize=0)
    if extra_threads:
        _thread_pool.maxsize = _thread_pool.maxsize + extra_threads
    return _thread_pool


def request_inputs(data_path: str, request_batch: int, model: str = "", limit: int = MAX_REQUESTS) -> list[Any]:
    """Prebuilt `InferInput` lists, one per request, at most `limit` of them taken evenly across the data file's
    samples (`request_data.request_batches`; the users cycle over them), shaped as `model` takes them (its config,
    read before the users start: `preload_requests`).

    Built once per process, by `preload_requests` (whose `limit` then stands), and shared read-only by every user,
    so serialization cost stays out of the measured loop.
    """
    key = (data_path, request_batch, model)
    if key not in _feeds_cache:
        _feeds_cache[key] = _built_requests(load_npz(data_path, float_truth=True), request_batch, model, limit)
    return _feeds_cache[key]


class SentRequest(list[Any]):
    """A prebuilt request's `InferInput`s and its length as sent (`request_data.sent_lengths`; 0: uncut)."""

    sent_length = 0


def _built_requests(data: TensorData, request_batch: int, model: str, limit: int) -> list[Any]:
    served = _served.get(model)
    if served is not None:  # whole requests as the run's check read them (`loadtest.data_file.served_data`)
        read_as_served("--data", data, served.input_specs(), served.max_batch_size)
    batches = request_batches(data, request_batch, served, limit)
    built = []
    for batch, length in zip(batches, sent_lengths(data, batches, served), strict=True):
        request = SentRequest(_to_infer_inputs(batch, served))
        request.sent_length = length
        built.append(request)
    return built


@events.test_start.add_listener
def preload_requests(environment: Environment, **_: Any) -> None:
    """Build the requests and read the --trace before users spawn (on workers too, not on the master, which has no
    users), so the window measures load, not setup: a 2 M-row trace read by the user as it started left a 20 s
    window without a request."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, MasterRunner):
        return
    trace = replayed_trace(options)
    model, url = options.triton_model, options.triton_url or _TritonClientMixin.url
    if model and model not in _served:  # asked here, not in the first request's time; None: left to that request
        tls, threads = client_tls(options), gevent.get_hub().threadpool
        served = threads.apply(read_served_inputs, (url, model, tls))
        declared = threads.apply(read_declared_outputs, (url, model, tls)) if served is not None else None
        if served is not None:
            _served[model] = served.told(getattr(options, "triton_length_input", "") or None)  # --length-input
            if declared is not None:  # else the first answer reads both
                _batched[model], _declared[model] = served.batched, declared
    if options.triton_data:  # in an OS thread: a worker whose loop it held (a 512 MB file) sent no heartbeat, and
        # Locust, its workers "missing", stopped the run before a request
        sizes = [] if trace is None or trace.sizes is None else [int(n) for n in np.unique(trace.sizes)]
        build = (options.triton_data, sizes, options.request_batch or 1, model)
        gevent.get_hub().threadpool.apply(_build_before_start, build)


def _build_before_start(data_path: str, sizes: list[int], request_batch: int, model: str) -> None:
    """The requests of every size a step sends (a trace's `sizes`, and --request-batch) from one read of the file,
    a trace's sizes sharing one budget (`request_limit`) as the check before the run built them
    (`check_sent_shapes`): a trace may name thousands of sizes."""
    limit, data = request_limit(sizes) if sizes else MAX_REQUESTS, load_npz(data_path, float_truth=True)
    for samples in (*sizes, request_batch):
        if (data_path, samples, model) not in _feeds_cache:
            _feeds_cache[data_path, samples, model] = _built_requests(data, samples, model, limit)


@events.init.add_listener
def listen_for_model_gone(environment: Environment, **_: Any) -> None:
    """The master (or the single process) ends the run when a user says the model is gone (`_end_for_model_gone`)."""
    _environment[:] = [environment]
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.register_message(MODEL_GONE_MESSAGE, _end_for_model_gone)


def _end_for_model_gone(environment: Environment, msg: Any, **_: Any) -> None:
    """Record the model's going away (`loadtest.model_gone`) and end the run as its --window-time would: Locust's
    `runner.quit()`, which stops every user and tells the workers to quit (a worker's own quit would end only its
    users, which Locust then gives to the others). In a greenlet of its own: this runs in a user's greenlet, which
    the stop kills, or in Locust's message loop. Not once the run is stopping: its window ended as planned. Under
    the web UI the test stops instead, the UI kept."""
    runner, options = environment.runner, environment.parsed_options
    if runner is None or _ending or runner.state in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
        return
    _ending.append(True)
    if options is not None and options.record_dir:
        write_gone(Path(options.record_dir), dict(msg.data))
    gevent.spawn(runner.quit if options is None or options.headless else runner.stop)


@events.quit.add_listener
def write_last_failures(**_: Any) -> None:
    """The master (or the single process) rewrites Locust's failure table whole as Locust quits. Locust's CSV writer
    writes it once a second and closes it at the end without a last write: the failures of a run's last second were
    in its count and missing from the table (a run cut by its model's going away: "3 of 13515 requests failed",
    `_failures.csv` empty, Triton's NOT_SERVED answers named nowhere)."""
    environment = _environment[0] if _environment else None
    prefix = getattr(environment.parsed_options, "csv_prefix", None) if environment is not None else None
    if environment is None or isinstance(environment.runner, WorkerRunner) or not prefix:
        return
    path = Path(f"{prefix}_failures.csv")
    scratch = path.with_name(f".{path.name}.{os.getpid()}")  # replaced whole: Locust's own handle keeps the old file
    try:
        with scratch.open("w", newline="") as handle:
            StatsCSV(environment, PERCENTILES_TO_REPORT).failures_csv(csv.writer(handle))
        os.replace(scratch, path)
    finally:  # a full disk: Locust's own table stands, and no half-written scratch is left beside it
        scratch.unlink(missing_ok=True)


def _to_infer_inputs(batch: dict[str, np.ndarray], served: ServedInputs | None = None) -> list[Any]:
    inputs = []
    for name, array in as_served(batch, served).items():
        array = as_sent(array)  # str (U) arrays as UTF-8 bytes: Triton's BYTES
        infer_input = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        infer_input.set_data_from_numpy(np.ascontiguousarray(array))
        inputs.append(infer_input)
    return inputs


class _TritonClientMixin:
    """Settings from Locust's parsed options, prebuilt requests, and the blocking gRPC call."""

    environment: Environment
    url: str = "127.0.0.1:8001"
    model: str = ""
    data: str = ""
    request_batch: int = 1
    timeout_s: float = 30.0
    model_version: str = ""  # the version every request names ("": Triton's choice, the newest served)
    _pool: ThreadPool  # set by each user's on_start (`blocking_call_pool`)
    _order: Iterator[int]  # the next prebuilt request's index

    def _configure(self) -> None:
        options = self.environment.parsed_options
        if options is not None:
            self.url = options.triton_url or self.url
            self.model = options.triton_model or self.model
            self.model_version = getattr(options, "triton_model_version", "") or self.model_version
            self.data = options.triton_data or self.data
            self.request_batch = options.request_batch or self.request_batch
            self.timeout_s = getattr(options, "request_timeout", 0.0) or self.timeout_s
            self.tls = client_tls(options)
        if not self.model or not self.data:
            raise ValueError("set --triton-model and --triton-data (or QUANTSERVE_MODEL / QUANTSERVE_DATA)")
        self.requests = request_inputs(self.data, self.request_batch, self.model)

    def _new_client(self) -> Any:
        tls = getattr(self, "tls", None)
        tls_kwargs = tls.grpc_kwargs() if tls else {}
        return grpcclient.InferenceServerClient(self.url, channel_args=channel_args(), **tls_kwargs)

    def _infer_blocking(self, client: Any, inputs: list[Any], clock: list[float]) -> int:
        """Runs in an OS thread: one gRPC round trip, returns the response size in bytes. An answer without one row
        per row sent fails, and so does one of another datatype or dims than the model's config declares (read from
        the response's datatypes and shapes, no tensor decoded).

        `clock` gets the call's own span, read in this thread: [perf_counter as tritonclient starts the call,
        perf_counter as it returns (answer or failure), wall time then], then the answering version (0.0 where none)
        and the request's length as sent (`SentRequest`). It spans tritonclient building the request,
        gRPC's send and wait, and reading the answer's protobuf; not the hand-off to this thread and back to the
        greenlet waiting on it (the gevent hub, the GIL), nor the row check. 10 users of 350 MB answers on 2 shared
        cores, in two runs: failures at the 30 s gRPC deadline timed 41.4 s with that hand-off, 31–34 s without
        (the rest is inside tritonclient's call: building, sending, reading 350 MB answers on busy cores)."""
        clock[:] = [time.perf_counter()]
        try:
            named = {"model_version": self.model_version} if self.model_version else {}  # none: Triton's, the newest
            result = client.infer(self.model, inputs, client_timeout=self.timeout_s, **named)
        finally:  # then the answering version, once read, and the request's length as sent (`LENGTH_COLUMN`)
            clock[1:] = [time.perf_counter(), time.time(), 0.0, float(getattr(inputs, "sent_length", 0))]
        response = result.get_response()
        clock[3] = answering_version(response.model_version)  # which version answered (`VERSION_COLUMN`)
        if self.model not in _batched:  # the server did not say before the window
            config = client.get_model_config(self.model, as_json=True, client_timeout=self.timeout_s)["config"]
            _batched[self.model], _declared[self.model] = batches_requests(config), declared_outputs(config)
        problem = None
        if _batched[self.model]:
            outputs = ((output.name, output.shape) for output in response.outputs)
            problem = row_mismatch(self.model, int(inputs[0].shape()[0]), outputs)
        if problem is None and self.model in _declared:
            problem = wire_mismatch(_declared[self.model], response.outputs)
        if problem is not None:
            raise TritonRequestFailed(problem)
        return sum(len(raw) for raw in response.raw_output_contents)

    def _infer_judged(self, client: Any, inputs: list[Any], clock: list[float]) -> int:
        """Runs in an OS thread: `_infer_blocking`, and where Triton answers that it does not serve the model
        (NOT_SERVED), whether it still serves it, or the version the run names, at all (`loadtest.model_gone`), asked
        on the same client after the call's span (`clock`) ended."""
        try:
            return self._infer_blocking(client, inputs, clock)
        except Exception as exc:  # judged without ever replacing `exc`: its status says whose deadline it was
            ended, addressed = clock[2] if len(clock) >= 3 else time.time(), (self.model, self.model_version)

            def ready() -> bool | str:  # asked only after a NOT_SERVED answer (`ServedCheck.judge`)
                if client.is_model_ready(*addressed, client_timeout=READY_TIMEOUT_S):
                    return True
                index = client.get_model_repository_index(as_json=True, client_timeout=READY_TIMEOUT_S)
                return RELOADING if reloading(list(index.get("models", [])), addressed) else False

            _still_served.judge(exc, ended, addressed, ready, time.monotonic())
            raise

    def _stop_if_gone(self) -> None:
        """Tell the Locust master (or this process's own runner) once that the model is gone: it ends the run."""
        record = _still_served.to_tell()
        if record is not None and self.environment.runner is not None:
            self.environment.runner.send_message(MODEL_GONE_MESSAGE, record)

    def _send_unreported(self, client: Any, clock: list[float]) -> bool:
        """One request on `client` that no figure counts (a user's warm-up): whether it was answered."""
        call = self._pool.spawn(self._infer_judged, client, self.requests[next(self._order)], clock)
        call.wait()  # its answer or its failure ends it: the measured requests report theirs
        return bool(call.successful())

    def _past_deadline(self, exception: BaseException | None, clock: list[float]) -> float:
        """How a request failed by its deadline (--request-timeout), as recorded in DEADLINE_COLUMN: 0.0 not so;
        1.0 gRPC's DEADLINE_EXCEEDED after the call had waited 0.99 of it; EARLY_DEADLINE the same status sooner.

        Every DEADLINE_EXCEEDED is a deadline failure: session 45, a Python model sleeping 0.2 s a batch of 8 under
        32 users and a 0.5 s deadline ended 845 requests with DEADLINE_EXCEEDED, one of them after 491 ms (under the
        0.99 x 0.5 s this counted as the client's), and that one was filed as a failure of another kind. Sooner than
        the client's own timer, the status comes from the server's side (gRPC passes the deadline on; the server may
        drop a request it cannot answer in time) or from gRPC's coarse clock; the summary counts those apart."""
        status = getattr(exception, "status", None)
        if not callable(status) or status() != DEADLINE_STATUS:
            return 0.0
        early = len(clock) >= 2 and clock[1] - clock[0] < 0.99 * self.timeout_s
        return EARLY_DEADLINE if early else 1.0

    def _fire(
        self,
        started: float,
        clock: list[float],
        response_length: int,
        exception: BaseException | None,
        send_lag_ms: float = 0.0,
        generator_lag_ms: float = 0.0,
        samples: int = 0,
        in_flight: int = 0,
    ) -> None:
        """Report one request to Locust: its latency from `started` to its answer as `_infer_blocking`'s `clock`
        read it (now, where the call never reached a thread). Open loop: `send_lag_ms`, how long after its arrival
        time it left the client; `generator_lag_ms`, the part the generator itself was late waking for it (its CPU).
        `samples`: the request's samples (0: the run's --request-batch); `in_flight`, open loop: this user's
        requests in flight when it arrived, itself included."""
        deadline = self._past_deadline(exception, clock)
        if exception is not None:
            exception = readable_failure(exception)
        answered, answered_wall = (clock[1], clock[2]) if len(clock) >= 3 else (time.perf_counter(), time.time())
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=self.model,
            response_time=(answered - started) * 1000.0,
            response_length=response_length,
            exception=exception,
            context={
                "send_lag_ms": send_lag_ms,
                "generator_lag_ms": generator_lag_ms,
                "samples": samples or self.request_batch,
                "in_flight": in_flight,
                "ended_at": answered_wall,
                "client_deadline": deadline,
                "model_version": clock[3] if len(clock) > 3 and exception is None else 0.0,
                "sent_length": clock[4] if len(clock) > 4 else 0.0,
            },
        )
