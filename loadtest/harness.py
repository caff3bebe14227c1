"""Run Locust headless against a Triton model and turn what it recorded into a `LoadResult`.

Locust runs in child processes (it monkey-patches the interpreter with gevent): one local
process, or Locust's own master plus K local `--worker` processes — the same form as the
multi-machine one. Triton's counters are scraped by the Locust master at both ends of the
measured window; utilization is sampled here, beside it; `loadtest.step_result` reads the window.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import loadtest
from loadtest import recording_files
from loadtest.interruption import MeasuredSteps, StepInterrupted
from loadtest.load_pattern import ClosedLoop, LoadStep
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings, step_paths
from loadtest.locust_processes import (
    FULL_ERRNOS,
    LocustStopped,
    check_disk_space,
    lost_workers,
    spawn,
    stop_gracefully,
    wait_for,
)
from loadtest.queue_delay import queue_delay_note
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity, config_now, served_identity, versions_now
from loadtest.server_back import (
    BETWEEN_STEPS,
    ToldServerPid,
    joined,
    restart_kept_on_error,
    save_run,
    server_back,
)
from loadtest.server_pids import ServerPids, listening_pid
from loadtest.step_checks import check_model_ready, check_server_pid, request_sizes
from loadtest.step_result import step_result
from loadtest.triton_metrics import metrics_endpoint
from loadtest.utilization import UtilizationSampler
from quantserve.errors import QuantserveError
from serving.ports import free_port
from serving.tls import ClientTls

STARTUP_MARGIN_S = 45.0
LOCUST_CSVS = ("stats", "stats_history", "failures", "exceptions")  # what `locust --csv PREFIX` writes
BEFORE_WINDOW = "the interrupt stopped its users as they started or warmed up, before the measured window opened"


def check_ready(settings: LoadSettings) -> list[str]:
    """What each step checks before its Locust run, for every step at once: with several models, one that is not
    ready is said before the first model's run (it used to run the first, then stop with no report). Returns the
    notes on what the steps will send (`sample_note`, `padding_note`), each once."""
    settings.check()
    notes: dict[str, None] = {}
    for step in settings.pattern.steps():
        step.check()
        notes.update(dict.fromkeys(check_model_ready(settings, request_sizes(settings, step))))
    if note := queue_delay_note(settings.label, settings.request_timeout_s, settings.queue_delay_s):
        notes[note] = None
    return list(notes)


def run_pattern(settings: LoadSettings, out_dir: Path | str, server_pid: int | None = None) -> LoadRun:
    """Every step of `settings.pattern` in order, each measured alone; saved together as `load-<model>.json`.
    Ctrl-C or SIGTERM saves what was measured, marked, and raises `RunInterrupted` (a KeyboardInterrupt). A step
    whose model stopped being served ends the run there, saved (`loadtest.model_gone`)."""
    settings.check()
    steps = settings.pattern.steps()
    told = ToldServerPid(server_pid)  # followed through a restart between steps
    with recording_files.results_folder_held(Path(out_dir)):
        identity, precision = run_identity(settings)
        with MeasuredSteps(settings.label, len(steps), Path(out_dir), precision, identity) as measured:
            for number in range(len(steps)):
                measure_step(measured, settings, steps, number, Path(out_dir), told)
        identity.versions_at_end = versions_now(settings.url, settings.model, settings.tls)
        identity.config_at_end = config_now(settings.url, settings.model, settings.tls)
        return save_run(measured.run(), Path(out_dir))


def measure_step(
    measured: MeasuredSteps,
    settings: LoadSettings,
    steps: Sequence[LoadStep],
    number: int,
    out_dir: Path,
    told: ToldServerPid | None = None,
    restarted: str | None = None,
) -> None:
    """Step `number` of `steps` run (`run_step`) and kept in `measured`; a full disk meanwhile is one line saying
    what ran, what was measured and what never ran (`full_disk_error`). `told`: --server-pid, followed through a
    restart between steps; `restarted`: the note of one before the run (`ModelsInTurn`), on its first step from the
    start, so a run cut short keeps it too."""
    step, told = steps[number], told or ToldServerPid(None)
    measured.start(step.name)  # none after a step whose model stopped being served (`MeasuredSteps`)
    if measured.server_pid is None:
        measured.server_pid = listening_pid(settings.url)
    back = restarted
    if measured.results:  # a restart since the step before waited for, and --server-pid followed through it
        back = server_back(measured, settings, steps, number, out_dir)
        back = joined(back, told.follow(measured.server_pid, settings.url))
    try:
        result = run_step(settings, step, out_dir, told.pid)
    except StepInterrupted as stop:  # its window cut short, kept: with the restart's note too
        _restart_noted(stop.result, back)
        raise
    except OSError as exc:
        raise full_disk_error(exc, measured.results, steps[number + 1 :]) from None
    except Exception as exc:  # the restart's note saved with what the run measured, as an interrupt saves it
        restart_kept_on_error(measured, step.name, exc, back, restarted, out_dir)
        raise
    _restart_noted(result, back)
    measured.finish(result)
    measured.server_pid = listening_pid(settings.url) or measured.server_pid


def _restart_noted(result: LoadResult | None, back: str | None) -> None:
    """`result` with the note of a restart before its step (`back`) among its warm-up's (`results.WARM_UP_NOTES`)."""
    if result is not None and back:
        result.warm_up = {**(result.warm_up or {}), BETWEEN_STEPS: back}


class LoadCutShort(OSError):
    """A step's load ran and the system cut its records short (a full disk, a file size limit): the OSError, kept."""


def full_disk_error(exc: OSError, finished: list[LoadResult], not_run: Sequence[LoadStep]) -> OSError:
    """The step's OSError (a full disk, `check_disk_space`: `PATH: reason`) with what the run loses said: the step
    ran, its records cut short and removed; the steps finished before it, their figures in the line (a full disk
    saves no file: a sweep's finished steps had gone without a word, issue 11); the steps never run."""
    if exc.errno not in FULL_ERRNOS or exc.filename is None:  # another refusal (a folder not writable): as it is
        return exc
    ran = "the step did not start"
    if isinstance(exc, LoadCutShort):
        ran = "the step's load ran, its records cut short were removed"
    said = [f"{exc.strerror}: {ran}"]
    for result in finished:
        said.append(
            f"{result.label} measured {result.requests} requests, {result.throughput_rps:.1f} req/s, p50 "
            f"{result.latency.p50_ms:.1f} ms, p99 {result.latency.p99_ms:.1f} ms (not saved: no room)"
        )
    if not_run:
        said.append(f"not run: {', '.join(step.name for step in not_run)}")
    return OSError(exc.errno, "; ".join(said), exc.filename)


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


def run_identity(settings: LoadSettings) -> tuple[RunIdentity, str | None]:
    """The run's identity at its start (`served_identity`) and the precision of the version it loads: where
    --model-version names one, that version's own, not the config's (the last deploy's, `serving.model_version`)."""
    from serving.client import served_precision

    identity, precision = served_identity(
        settings.url, settings.model, settings.data, settings.tls, settings.model_version
    )
    if settings.model_version:
        precision = served_precision(settings.url, settings.model, settings.tls, version=settings.model_version)
    return identity, precision


def run_step(settings: LoadSettings, step: LoadStep, out_dir: Path, server_pid: int | None = None) -> LoadResult:
    """Run Locust for one step and summarize exactly its measured window. Ctrl-C or SIGTERM during the run raises
    `StepInterrupted` with the window measured up to then, summarized the same way."""
    settings.check()
    step.check()
    check_model_ready(settings, request_sizes(settings, step))
    record_dir, csv_prefix = step_paths(settings, step, out_dir)
    recording_files.clear(record_dir)
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    pids = ServerPids.at_start(settings.url)  # and any that replaces it (`quantserve serve` restarts a dead one)
    if server_pid is not None:
        check_server_pid(server_pid, pids.first, settings.url)
    interrupted_at = None
    with UtilizationSampler(server_pid if server_pid is not None else pids.first, follow=pids) as sampler:
        try:
            lost = _run_locust(settings, step, record_dir, csv_prefix)
        except KeyboardInterrupt as stop:  # Locust was stopped and wrote what it had recorded: that much was measured
            lost, interrupted_at = [], stop.at if isinstance(stop, LocustStopped) else time.time()
        except OSError as exc:  # a full disk (`check_disk_space`): records Locust cut short must not pass for a result
            _drop_records(record_dir, csv_prefix)
            raise LoadCutShort(exc.errno, exc.strerror, exc.filename) from None
    if interrupted_at is not None:
        raise _interrupted(settings, step, out_dir, pids, sampler, interrupted_at)
    try:
        return _labelled(step_result(settings, step, out_dir, pids, sampler, lost), settings)
    except KeyboardInterrupt:  # Locust had ended: the window is whole, summarized again (a second stops at once)
        at, result = time.time(), _labelled(step_result(settings, step, out_dir, pids, sampler, lost), settings)
        raise StepInterrupted(at, result, whole=True) from None


def _labelled(result: LoadResult, settings: LoadSettings) -> LoadResult:
    """The step's result named as its run is (`m@2` where one version is addressed): tables tell the two apart."""
    result.model = settings.label
    return result


def _drop_records(record_dir: Path, csv_prefix: Path) -> None:
    """Remove what a step's Locust processes wrote (raw records, logs, Locust's CSVs), leaving its raw folder empty."""
    with contextlib.suppress(OSError):
        recording_files.clear(record_dir)
    for kind in LOCUST_CSVS:
        Path(f"{csv_prefix}_{kind}.csv").unlink(missing_ok=True)


def _interrupted(
    settings: LoadSettings, step: LoadStep, out_dir: Path, pids: ServerPids, sampler: UtilizationSampler, at: float
) -> StepInterrupted:
    """The interrupted step's window up to the interrupt, summarized as a finished one and marked; no result, and
    why, when nothing was recorded (the interrupt came before the window opened, or before a request ended). A window
    that had reached its planned end (the stop came while Locust shut down) is the finished step's, unmarked."""
    record_dir, _ = step_paths(settings, step, out_dir)
    try:
        result = _labelled(step_result(settings, step, out_dir, pids, sampler, []), settings)
    except QuantserveError as exc:
        if not (record_dir / recording_files.WINDOW_FILE).is_file():  # the master never opened it: none measured
            return StepInterrupted(at, None, f"{BEFORE_WINDOW} (logs: {record_dir})")
        return StepInterrupted(at, None, f"nothing recorded before the interrupt ({exc})")
    if recording_files.read_window(record_dir).ran_to_plan:  # the stop came as Locust ended: nothing was cut
        return StepInterrupted(at, result, whole=True)
    if not result.requests:
        return StepInterrupted(at, None, f"no request ended in its {result.window_s:.1f} s window before the interrupt")
    result.interrupted, result.planned_window_s = True, step.run_seconds(settings.duration_s)
    return StepInterrupted(at, result)


def locust_command(
    settings: LoadSettings, step: LoadStep, record_dir: Path, csv_prefix: Path | None, role: str = "local"
) -> list[str]:
    """The `locust` command line for one step in one process: "local", "master" or "worker"."""
    locustfile = Path(loadtest.__file__).parent / step.locustfile
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]
    command += ["--triton-url", settings.url, "--triton-model", settings.model, "--triton-data", str(settings.data)]
    command += ["--request-batch", str(settings.request_batch), "--record-dir", str(record_dir)]
    command += ["--request-timeout", f"{settings.request_timeout_s:g}"]
    if settings.model_version:
        command += ["--triton-model-version", settings.model_version]
    if settings.length_input is not None:
        command += ["--triton-length-input", settings.length_input]
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
    ramp += settings.request_timeout_s  # and the users' warm-ups, which the client deadline ends (`recording`)
    timeout = ramp + step.run_seconds(settings.duration_s) + STARTUP_MARGIN_S + 10 * settings.workers
    processes: list[subprocess.Popen[bytes]] = []  # each as it starts: an interrupt while the next starts stops it too
    try:
        for name, command in _process_commands(settings, step, record_dir, csv_prefix):
            processes.append(spawn(command, record_dir, name))
        wait_for(processes[0], timeout, record_dir)
        lost = lost_workers(processes[1:])
        if lost:  # a worker that could not write its records
            check_disk_space(record_dir)
        return lost
    except KeyboardInterrupt:
        interrupted = LocustStopped(time.time())  # now, not once the processes have stopped
        with contextlib.suppress(KeyboardInterrupt):  # a second one ends the wait for them at once
            stop_gracefully(processes)
        raise interrupted from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _process_commands(
    settings: LoadSettings, step: LoadStep, record_dir: Path, csv_prefix: Path
) -> list[tuple[str, list[str]]]:
    """Each Locust process of the step, by the name of its log: one "locust", or a "master" and its workers."""
    if settings.workers == 0:
        return [("locust", locust_command(settings, step, record_dir, csv_prefix))]
    port = free_port()
    link = ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    master = [*locust_command(settings, step, record_dir, csv_prefix, "master"), *link]
    worker = [*locust_command(settings, step, record_dir, None, "worker"), "--master-host", "127.0.0.1"]
    worker += ["--master-port", str(port)]
    return [("master", master)] + [(f"worker{i}", worker) for i in range(settings.workers)]


def _tls_flags(tls: ClientTls | None) -> list[tuple[str, str]]:
    if tls is None:
        return []
    pairs = (("--triton-tls-ca", tls.ca), ("--triton-tls-cert", tls.cert), ("--triton-tls-key", tls.key))
    return [(flag, str(value)) for flag, value in pairs if value is not None]
