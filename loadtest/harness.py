"""Run Locust headless against a Triton model and turn what it recorded into a `LoadResult`.

Locust runs in child processes (it monkey-patches the interpreter with gevent): one local
process, or Locust's own master plus K local `--worker` processes — the same form as the
multi-machine one. Triton's counters are scraped by the Locust master at both ends of the
measured window; utilization is sampled here, beside it.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import loadtest
from loadtest import recording_files
from loadtest.interruption import MeasuredSteps, StepInterrupted
from loadtest.load_pattern import ClosedLoop, LoadPattern, LoadStep, OpenLoop
from loadtest.locust_processes import lost_workers, spawn, stop_gracefully, wait_for
from loadtest.percentiles import LatencySummary, cdf_points
from loadtest.request_data import check_request_size
from loadtest.results import NO_PROCESS_AT_END, UNANSWERED_ERROR, LoadResult, LoadRun, safe_name
from loadtest.timeline import outages, per_second
from loadtest.triton_metrics import breakdown, counters_went_back, counts_disagree, metrics_endpoint, versions_changed
from loadtest.utilization import UtilizationSampler
from quantserve.data import check_against, load_npz
from quantserve.errors import QuantserveError
from serving.server import free_port
from serving.tls import ClientTls

STARTUP_MARGIN_S = 45.0
LIVENESS_TIMEOUT_S = 2.0  # a server that answers nothing within this at the end of a run has stopped answering
ONE_USER = ClosedLoop(users=1)  # frozen, so one shared default is safe


@dataclass
class LoadSettings:
    """What to load and how: the target, the data, the load pattern, the Locust processes."""

    url: str
    model: str
    data: Path
    pattern: LoadPattern = ONE_USER
    duration_s: float = 10.0  # per measured step
    request_batch: int = 1
    workers: int = 0
    metrics_url: str | None = None
    tls: ClientTls | None = None  # gRPC over TLS (mutual with a client certificate)
    max_in_flight: int = 64  # open loop: requests a Locust process keeps in flight; later arrivals wait in the client

    def check(self) -> None:
        """Reject impossible settings before any process starts."""
        self.pattern.check()
        if self.duration_s <= 0:
            raise QuantserveError(f"--duration must be positive, got {self.duration_s:g} s")
        if self.workers < 0:
            raise QuantserveError(f"--workers must be 0 or more, got {self.workers}")
        if self.request_batch < 1:
            raise QuantserveError(f"--request-batch must be at least 1, got {self.request_batch}")
        if self.max_in_flight < 1:
            raise QuantserveError(f"--max-in-flight must be at least 1, got {self.max_in_flight}")
        check_expected_arrivals(self.pattern, self.duration_s)
        data = load_npz(self.data)  # a missing or unreadable data file is one clear line, here
        check_request_size(self.data, data, self.request_batch, 0, "--request-batch")

    def step_name(self, step: LoadStep) -> str:
        """Where one step's raw files and Locust CSVs go: `<model>-u16`, `<model>-rate50-poisson`."""
        return f"{safe_name(self.model)}-{step.name}"


def check_ready(settings: LoadSettings) -> None:
    """What each step checks before its Locust run, for every step at once: with several models, one that is not
    ready is said before the first model's run (it used to run the first, then stop with no report)."""
    settings.check()
    for step in settings.pattern.steps():
        step.check()
        _check_model_ready(settings.url, settings.model, settings.data, settings.tls, _largest_request(settings, step))


def check_expected_arrivals(pattern: LoadPattern, duration_s: float) -> None:
    """Refuse an open-loop rate that expects under one arrival in the window: it would measure nothing and pass."""
    for step in pattern.steps():
        if isinstance(step, OpenLoop) and step.rate * duration_s < 1:
            raise QuantserveError(
                f"--rate {step.rate:g} over --duration {duration_s:g}s expects {step.rate * duration_s:.2g} requests, "
                "fewer than one: raise --rate or --duration"
            )


def run_pattern(settings: LoadSettings, out_dir: Path | str, server_pid: int | None = None) -> LoadRun:
    """Every step of `settings.pattern` in order, each measured alone; saved together as `load-<model>.json`.
    Ctrl-C or SIGTERM saves what was measured, marked, and raises `RunInterrupted` (a KeyboardInterrupt)."""
    settings.check()
    steps = settings.pattern.steps()
    with recording_files.results_folder_held(Path(out_dir)):
        with MeasuredSteps(settings.model, len(steps), Path(out_dir)) as measured:
            for step in steps:
                measured.start(step.name)
                measured.finish(run_step(settings, step, Path(out_dir), server_pid))
        run = measured.run()
        run.save(Path(out_dir))
    return run


def run_load(
    url: str,
    model: str,
    data: Path | str,
    users: int,
    duration_s: float,
    out_dir: Path | str,
    metrics_url: str | None = None,
    server_pid: int | None = None,
    workers: int = 0,
    request_batch: int = 1,
    tls: ClientTls | None = None,
) -> LoadResult:
    """One closed-loop step of `users` users, the common case of `run_pattern`; saves `load-<model>.json`."""
    settings = LoadSettings(
        url, model, Path(data), ClosedLoop(users), duration_s, request_batch, workers, metrics_url, tls
    )
    return run_pattern(settings, out_dir, server_pid).results[0]


def run_step(settings: LoadSettings, step: LoadStep, out_dir: Path, server_pid: int | None = None) -> LoadResult:
    """Run Locust for one step and summarize exactly its measured window. Ctrl-C or SIGTERM during the run raises
    `StepInterrupted` with the window measured up to then, summarized the same way."""
    settings.check()
    step.check()
    _check_model_ready(settings.url, settings.model, settings.data, settings.tls, _largest_request(settings, step))
    record_dir, csv_prefix = step_paths(settings, step, out_dir)
    recording_files.clear(record_dir)
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    listening = _listening_pid(settings.url)
    if server_pid is not None:
        check_server_pid(server_pid, listening, settings.url)
    pid = server_pid if server_pid is not None else listening
    interrupted_at = None
    with UtilizationSampler(pid) as sampler:
        try:
            lost = _run_locust(settings, step, record_dir, csv_prefix)
        except KeyboardInterrupt:  # Locust was stopped and wrote what it had recorded: that much was measured
            lost, interrupted_at = [], time.time()
    if interrupted_at is not None:
        raise _interrupted(settings, step, out_dir, listening, sampler, interrupted_at)
    return _step_result(settings, step, out_dir, listening, sampler, lost)


def _interrupted(
    settings: LoadSettings, step: LoadStep, out_dir: Path, listening: int | None, sampler: UtilizationSampler, at: float
) -> StepInterrupted:
    """The interrupted step's window up to the interrupt, summarized as a finished one and marked; no result, and
    why, when nothing was recorded (the interrupt came before the users were spawned, or before a request ended)."""
    try:
        result = _step_result(settings, step, out_dir, listening, sampler, [])
    except QuantserveError as exc:
        return StepInterrupted(at, None, f"nothing recorded before the interrupt ({exc})")
    if not result.requests:
        return StepInterrupted(at, None, f"no request ended in its {result.window_s:.1f} s window before the interrupt")
    result.interrupted, result.planned_window_s = True, step.run_seconds(settings.duration_s)
    return StepInterrupted(at, result)


def step_paths(settings: LoadSettings, step: LoadStep, out_dir: Path) -> tuple[Path, Path]:
    """Where a step's Locust processes record (`raw/<step>`) and the prefix of Locust's CSVs (`locust/<step>`)."""
    return out_dir / "raw" / settings.step_name(step), out_dir / "locust" / settings.step_name(step)


def _step_result(
    settings: LoadSettings,
    step: LoadStep,
    out_dir: Path,
    listening: int | None,
    sampler: UtilizationSampler,
    lost: list[str],
) -> LoadResult:
    """The step's result from what its Locust processes recorded, with the server's counters judged whole or not."""
    record_dir, csv_prefix = step_paths(settings, step, out_dir)
    window = recording_files.read_window(record_dir)
    restarted = _server_restarted(listening, _listening_pid(settings.url), window, settings.model)
    result = _result_of_window(settings, step, record_dir, window, csv_prefix)
    result.utilization, result.lost_workers = sampler.result(window.start, window.end), lost
    if restarted:  # the new process's counters began at zero: their delta covers part of the window
        result.server_restarted, result.server = restarted, None  # samples kept (a soak's evidence), never shown
    elif partial := counters_not_whole(window, result):  # the same process, but its counters cover part of it
        result.server_counters_left_out, result.server = partial, None
    result.locust_csv_prefix = str(csv_prefix.relative_to(out_dir))
    return result


def _result_of_window(
    settings: LoadSettings, step: LoadStep, record_dir: Path, window: recording_files.Window, csv_prefix: Path
) -> LoadResult:
    """The window's result from what the Locust processes recorded, with the requests they left unanswered (failed
    or still in flight) and, open loop, the arrivals they never sent."""
    samples = recording_files.read_latencies(record_dir, window.start, window.end)
    unanswered = recording_files.read_unanswered(record_dir, window.end)
    answering = _answering_at_end(settings, window, samples, unanswered)
    stuck = recording_files.unanswered_rows(samples, unanswered, window.end, answering)
    result = _summarize(settings, step, window, np.concatenate([samples, stuck]), csv_prefix)
    if len(stuck):
        result.errors[UNANSWERED_ERROR] = len(stuck)
        result.unanswered_max_ms = float(stuck[:, 1].max())
    waits = recording_files.still_in_flight(samples, unanswered, answering)
    if len(waits):
        result.in_flight_at_end, result.in_flight_max_ms = len(waits), float(waits.max())
    result.cut_at_end = len(unanswered) - len(stuck) - len(waits)  # on their way when the stop dropped them
    if step.mode == "open":
        result.unsent = recording_files.read_unsent(record_dir, window.end)
        result.offered_requests = len(samples) + len(unanswered) + result.unsent
    return result


def _answering_at_end(
    settings: LoadSettings, window: recording_files.Window, samples: np.ndarray, unanswered: np.ndarray
) -> bool:
    """Whether the server still answered at the end, asked only when it decides anything: overdue requests and
    none answered. A metrics scrape at the end that got nothing says no; without one, a liveness probe decides."""
    if not len(recording_files.overdue(samples, unanswered)) or recording_files.answered_any(samples):
        return False
    if settings.metrics_url:
        return window.metrics_after is not None
    return server_live(settings.url, settings.tls)


def server_live(url: str, tls: ClientTls | None = None, timeout_s: float = LIVENESS_TIMEOUT_S) -> bool:
    """Whether tritonserver at `url` answers a liveness check within `timeout_s` (a stopped one does not)."""
    from serving.client import TritonGrpcClient

    with TritonGrpcClient(url, timeout_s=timeout_s, tls=tls) as client:
        return client.is_server_live()


def _summarize(
    settings: LoadSettings, step: LoadStep, window: recording_files.Window, samples: np.ndarray, csv_prefix: Path
) -> LoadResult:
    ok = samples[:, 2] > 0.5 if samples.size else np.zeros(0, dtype=bool)
    latencies = samples[ok, 1] if samples.size else np.zeros(0)
    span = window.end - window.start
    timeline = per_second(samples, window.start, window.end)
    server = None
    if window.metrics_before is not None and window.metrics_after is not None:
        server = breakdown(window.metrics_before, window.metrics_after, settings.model)
    lag_p50, lag_p99, generator_p99 = _send_lags(samples) if step.mode == "open" else (None, None, None)
    columns = samples.shape[1] if samples.ndim == 2 and len(samples) else 0  # a window with no arrival has no rows
    peak = int(samples[:, 6].max()) if step.mode == "open" and columns >= 7 else None
    return LoadResult(
        send_lag_p50_ms=lag_p50,
        send_lag_p99_ms=lag_p99,
        generator_lag_p99_ms=generator_p99,
        max_in_flight=settings.max_in_flight if step.mode == "open" else None,
        peak_in_flight=peak or None,
        model=settings.model,
        url=settings.url,
        window_s=span,
        requests=len(ok),
        failed_requests=int((~ok).sum()),
        throughput_rps=float(ok.sum() / span) if span > 0 else math.nan,
        inferences_per_s=_samples_sent(samples, ok, settings.request_batch) / span if span > 0 else math.nan,
        latency=LatencySummary.from_samples(latencies),
        request_batch=settings.request_batch,
        workers=settings.workers,
        server=server,
        **step.recorded(settings.workers),
        cdf=cdf_points(latencies),
        errors=recording_files.read_failures(csv_prefix),
        metrics_missing="; ".join(window.metrics_errors) or None,
        timeline=timeline,
        outages=outages(samples, window.start, window.end),
    )


def _samples_sent(samples: np.ndarray, ok: np.ndarray, request_batch: int) -> float:
    """The samples the successful requests carried: each one's own count (column 5), --request-batch each where
    it was not recorded."""
    if samples.ndim == 2 and samples.shape[1] >= 6 and len(samples):
        return float(np.where(samples[ok, 5] > 0, samples[ok, 5], request_batch).sum())
    return float(ok.sum() * request_batch)


def _send_lags(samples: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """p50 and p99 of how late open-loop requests left the client after their arrival times (column 3), and p99 of
    how late the generator woke for them (column 4; the rest is the wait for a free in-flight slot)."""
    if samples.ndim != 2 or samples.shape[1] < 5 or not len(samples):
        return None, None, None
    lags, generator = samples[:, 3], samples[:, 4]
    return float(np.percentile(lags, 50)), float(np.percentile(lags, 99)), float(np.percentile(generator, 99))


def locust_command(
    settings: LoadSettings, step: LoadStep, record_dir: Path, csv_prefix: Path | None, role: str = "local"
) -> list[str]:
    """The `locust` command line for one step in one process: "local", "master" or "worker"."""
    locustfile = Path(loadtest.__file__).parent / step.locustfile
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]
    command += ["--triton-url", settings.url, "--triton-model", settings.model, "--triton-data", str(settings.data)]
    command += ["--request-batch", str(settings.request_batch), "--record-dir", str(record_dir)]
    if settings.metrics_url:
        command += ["--metrics-url", metrics_endpoint(settings.metrics_url)]
    for flag, value in _tls_flags(settings.tls):
        command += [flag, value]
    command += step.locust_options()
    if step.mode == "open":
        command += ["--max-in-flight", str(settings.max_in_flight)]
    if role == "worker":
        return [*command, "--worker"]
    command += ["--headless", *step.locust_run_flags(settings.workers, settings.duration_s)]
    command += ["--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "0"]
    if csv_prefix is not None:
        command += ["--csv", str(csv_prefix)]
    if role == "master":
        command += ["--master", "--expect-workers", str(settings.workers)]
    return command


def _run_locust(settings: LoadSettings, step: LoadStep, record_dir: Path, csv_prefix: Path) -> list[str]:
    """Start the Locust processes, wait for the master (or the single process), and always reap them; returns the
    workers that died before the end (`lost_workers`)."""
    ramp = step.locust_users(settings.workers) / step.locust_spawn_rate(settings.workers)  # before the window opens
    timeout = ramp + step.run_seconds(settings.duration_s) + STARTUP_MARGIN_S + 10 * settings.workers
    if settings.workers == 0:
        processes = [spawn(locust_command(settings, step, record_dir, csv_prefix), record_dir, "locust")]
    else:
        port = free_port()
        link = ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        master_command = locust_command(settings, step, record_dir, csv_prefix, "master")
        master = spawn([*master_command, *link], record_dir, "master")
        worker_link = ["--master-host", "127.0.0.1", "--master-port", str(port)]
        processes = [master] + [
            spawn([*locust_command(settings, step, record_dir, None, "worker"), *worker_link], record_dir, f"worker{i}")
            for i in range(settings.workers)
        ]
    try:
        wait_for(processes[0], timeout, record_dir)
        return lost_workers(processes[1:])
    except KeyboardInterrupt:
        stop_gracefully(processes)
        raise
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _tls_flags(tls: ClientTls | None) -> list[tuple[str, str]]:
    if tls is None:
        return []
    pairs = (("--triton-tls-ca", tls.ca), ("--triton-tls-cert", tls.cert), ("--triton-tls-key", tls.key))
    return [(flag, str(value)) for flag, value in pairs if value is not None]


def _largest_request(settings: LoadSettings, step: LoadStep) -> tuple[int, str]:
    """The most samples one request of this step carries, and which flag says so."""
    sizes = getattr(getattr(step, "trace", None), "sizes", None)  # a replayed trace with a request-size column
    if sizes is not None:
        return int(sizes.max()), f"--trace {getattr(step, 'path', '')}"
    return settings.request_batch, "--request-batch"


def _check_model_ready(
    url: str, model: str, data_path: Path, tls: ClientTls | None = None, largest: tuple[int, str] = (1, "")
) -> None:
    """Fail in one line when the server is not there, the model is not loaded, the data does not fit it, or a
    request would carry more samples than the model's max_batch_size (every such request would fail)."""
    from serving.client import TritonGrpcClient

    with TritonGrpcClient(url, timeout_s=5.0, tls=tls) as client:
        if not client.is_model_ready(model):
            if not client.is_server_live():
                raise QuantserveError(f"no Triton server answers at {url}")
            ready = ", ".join(sorted(client.ready_models())) or "none"
            raise QuantserveError(f"model '{model}' is not ready on {url} (ready: {ready})")
        inputs, _ = client.model_metadata(model)
        max_batch = int(client.model_config(model).get("max_batch_size", 0) or 0)
    check_against(data_path, load_npz(data_path), inputs)
    samples, flag = largest
    if max_batch > 0 and samples > max_batch:
        raise QuantserveError(
            f"{flag}: requests of {samples} samples, more than model '{model}' takes (max_batch_size {max_batch}); "
            "Triton would reject every one: send smaller requests or deploy with a larger --max-batch"
        )


def _server_restarted(
    pid_before: int | None, pid_after: int | None, window: recording_files.Window, model: str
) -> str | None:
    """How a server replaced during the window showed (None: it was not): another process listening on its port
    at the end than at the start (`quantserve serve` restarts a tritonserver that died), none at all, or Triton's
    cumulative counters lower at the end than at the start. A restarted server's counters begin again at zero,
    so their delta over the window counted only the time since: a run whose server was killed 11 s into 20
    reported the last 5 s's batch size and queue time as the window's."""
    if pid_before is not None and pid_after is not None and pid_after != pid_before:
        return f"pid {pid_before} listened on its port at the start, pid {pid_after} at the end"
    if pid_before is not None and pid_after is None:
        return f"pid {pid_before} listened on its port at the start, {NO_PROCESS_AT_END}"
    before, after = window.metrics_before, window.metrics_after
    if before is None or after is None or versions_changed(before, after, model):  # a version swap, not a restart
        return None
    if counters_went_back(before, after, model):
        return f"Triton's cumulative counters were lower at the end than at the start (or model '{model}' reloaded)"
    return None


def counters_not_whole(window: recording_files.Window, result: LoadResult) -> str | None:
    """Why Triton's counters over the window do not cover it though the server stayed up (None: they do): the
    model's served versions changed (a deploy or rollback: an unloaded version's counters are gone), or Triton's
    count of successful requests is off the client's beyond noise (a version reloaded under the same number)."""
    before, after, server = window.metrics_before, window.metrics_after, result.server
    if before is None or after is None or server is None:
        return None
    changed = versions_changed(before, after, result.model)
    if changed:
        return f"{changed}: Triton's counters of an unloaded version are gone"
    client = result.requests - result.failed_requests
    if result.lost_workers and server.requests_succeeded >= client:  # Triton answered the lost workers' requests too
        return None
    if not counts_disagree(server.requests_succeeded, client, result.users * (result.max_in_flight or 1)):
        return None
    return (
        f"Triton counted {server.requests_succeeded} successful requests of model '{result.model}' over the window, "
        f"the client {client}: a version unloaded or reloaded during it (a deploy, a rollback) takes its counters "
        "with it, another client's load adds to them"
    )


def check_server_pid(server_pid: int, listening: int | None, url: str) -> None:
    """A QuantserveError unless `server_pid` is a live process that is the server listening at `url` or its parent
    (`quantserve serve`): `--server-pid 1` reported init's family as the server's CPU and memory, and a
    negative pid failed in the sampling thread. Where the listening process cannot be seen, alive is enough."""
    import psutil

    try:
        if server_pid <= 0:
            raise psutil.NoSuchProcess(server_pid)
        name = psutil.Process(server_pid).name()
        server = {listening, psutil.Process(listening).ppid()} if listening is not None else {server_pid}
    except psutil.Error:
        raise QuantserveError(f"--server-pid {server_pid}: no such process") from None
    if server_pid not in server:
        raise QuantserveError(
            f"--server-pid {server_pid}: process {server_pid} ({name}) is not the server listening at {url} "
            f"(pid {listening}) nor its parent; give that pid, or leave --server-pid out (it is found by the port)"
        )


def _listening_pid(url: str) -> int | None:
    """The pid of the local process listening on the gRPC port, for CPU/memory sampling."""
    import psutil

    port = int(url.rsplit(":", 1)[-1])
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    except (psutil.Error, OSError):
        return None
    return None
