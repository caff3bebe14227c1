"""The server `quantserve tune` measures its trials on: one tritonserver over a scratch repository, each trial a
fresh deploy of the candidate and one model load, measured in windows of the project's Locust harness.

Each window is one run of the harness at the tune's closed-loop concurrency (or the trace from its start);
the requests that end during the warm-up are dropped (`tune_trials.Samples`). A trial that kills or hangs the
server fails alone, and the server is started again for the next.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.cli.tune_interrupted import TrialInterrupted, cut_trial
from quantserve.cli.tune_prune import clearly_worse
from quantserve.cli.tune_trials import (
    LIVENESS_TIMEOUT_S,
    SCRATCH_MODEL,
    TRACE_MAX_IN_FLIGHT,
    Samples,
    ServingConfig,
    Trial,
    TuneSettings,
    failed_trial,
    second_window_s,
)
from quantserve.errors import QuantserveError

# a server that refuses its liveness check may be shutting down (a SIGTERM from outside: it refused at once and
# exited with code 0 2.2 s later, and tune had called it "stopped answering"): its exit is awaited this long
SHUTDOWN_WAIT_S = 10.0


class WindowInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a window's Locust run: the requests that ended in it up to then (None: none, or the
    interrupt came before it opened). `whole`: the stop came after the window had reached its planned end (Locust
    shutting down, `loadtest.interruption.StepInterrupted.whole`): `samples` are the finished window's, nothing cut."""

    def __init__(self, samples: Samples | None, whole: bool = False) -> None:
        super().__init__("interrupted")
        self.samples, self.whole = samples, whole


class TrialServer:
    """One tritonserver (explicit model control) over a scratch repository; each trial redeploys one model."""

    attempt_tag = ""  # "-retry": the trial measured again after its server died (its windows' folders apart)
    stop_after: WindowInterrupted | None = None  # a stop that came after the trial's window ran to plan (`_window`)
    version = ""  # the scratch model's version the last `install` deployed: its windows count its counters alone

    def __init__(self, settings: TuneSettings, out: Path) -> None:
        from serving.server import TritonServer
        from serving.server_options import ServerOptions

        self.settings = settings
        self.out = out
        self.repo = out / ".tune-repo"
        shutil.rmtree(self.repo, ignore_errors=True)
        self.repo.mkdir(parents=True)
        options = ServerOptions.on_free_ports(
            self.repo, model_control="explicit", log_path=out / "tritonserver-tune.log"
        )
        self.server = TritonServer(options)
        self.count = 0

    def __enter__(self) -> TrialServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        shutil.rmtree(self.repo, ignore_errors=True)

    def install(self, config: ServingConfig) -> None:
        """Deploy the candidate as the scratch model's next version and load it (the old one unloads)."""
        from serving.deploy import deploy
        from serving.deploy_config import ServingPolicy

        build = self.settings.build_for(config.precision)
        policy = ServingPolicy(keep_versions=1)
        # allow_interface_change: deploy's check guards a served model's clients from a version they cannot call;
        # the scratch model's only client is tune's load, which reads its config afresh every window, and its trials
        # change the interface by design (a 1-D input is [-1] at max batch 0, [-1, 1] batched: every batched trial
        # was refused after the baseline). A name per mode would only keep a check that guards no one; the winner's
        # deploy into the user's repository (`tune_winner`) keeps it.
        deployed = deploy(
            build,
            self.repo,
            SCRATCH_MODEL,
            config.max_batch,
            config.max_queue_delay_us,
            config.preferred,
            config.instances,
            policy=policy,
            allow_interface_change=True,
        )
        self.version = str(deployed.version)
        self.server.control(timeout_s=120.0).load(SCRATCH_MODEL)

    def down(self) -> str | None:
        """How the trial server is out of service (None: it answers): exited, or silent to a liveness check."""
        cause = self.server.exit_cause()
        if cause is None and not self.server.control(timeout_s=LIVENESS_TIMEOUT_S).is_live():
            # awaited: a SIGKILLed server still dying when first asked (a busy machine) had read as "hung", and a
            # SIGTERMed one shutting down as "stopped answering"
            cause = self._exit_within(SHUTDOWN_WAIT_S) or (
                f"stopped answering (no reply to /v2/health/live within {LIVENESS_TIMEOUT_S:g} s)"
            )
        return cause

    def _exit_within(self, seconds: float) -> str | None:
        """How the server's process ended, where it ends within `seconds`; None where it still runs then."""
        deadline = time.monotonic() + seconds
        while (cause := self.server.exit_cause()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return cause

    def run(self, config: ServingConfig, rivals: Sequence[Trial] = ()) -> Trial:
        """Two measured windows, or one when the first is clearly worse than the best of `rivals` (`tune_prune`).

        A server found dead before the trial is not the trial's: started again first, said in `server_restarts`. One
        that dies or hangs during the trial is started again and the trial measured once more: a server killed from
        outside (probe, session 31: `kill -9` between trials 2 and 3 failed trial 3 at goodput 0, never retried,
        though that configuration had served 1012/s in an earlier tune) is no fault of the configuration. Only a
        second death in the retry fails the trial, named so; one bad point must not fail every trial after it."""
        self.count += 1
        self.attempt_tag = ""
        notes: list[str] = []
        dead = self.down()
        if dead is not None:  # before its first request: nothing of this configuration had run on it
            self.restart(dead, config)
            notes.append(f"tritonserver {dead} before this trial: restarted, then the trial measured")
        try:
            trial = self._measure(config, rivals)
        except TrialInterrupted as stop:
            raise self._stopped_whole(stop, notes) from None
        cause = self.down()
        if cause is None:
            return replace(trial, server_restarts=notes) if notes else trial
        self.restart(cause, config)
        notes.append(f"tritonserver {cause} during its first attempt: restarted and the trial measured again")
        self.attempt_tag = "-retry"
        try:
            trial = self._measure(config, rivals)
        except TrialInterrupted as stop:
            raise self._stopped_whole(stop, notes) from None
        again = self.down()
        if again is None:
            return replace(trial, server_restarts=notes)
        self.restart(again, config)
        deaths = f"tritonserver {again} during this trial, and {cause} in its first attempt"
        return server_failed(trial, deaths, notes[:-1])  # the error names both deaths

    def _stopped_whole(self, stop: TrialInterrupted, notes: list[str]) -> TrialInterrupted:
        """A trial raised whole at a stop (`TrialInterrupted.whole`) gets the liveness check a finished trial gets: a
        server that died or hung during it left figures no finished trial keeps (it would be measured again), and at a
        stop there is no again, so the trial is kept partial (`interrupted`, never ranked), the death said in its
        `server_restarts`. One check, bounded by its timeout; no restart: the user asked to stop. A trial cut by the
        stop is raised as it came."""
        if not stop.whole or stop.trial is None:
            return stop
        cause = self.down()
        if cause is None:
            return TrialInterrupted(replace(stop.trial, server_restarts=notes), stop.before, whole=True)
        died = f"tritonserver {cause} during this trial: not measured again (the stop came), kept partial"
        trial = replace(stop.trial, interrupted=True, server_restarts=[*notes, died])
        return TrialInterrupted(trial, stop.before)

    def restart(self, cause: str, config: ServingConfig) -> None:
        """Stop what is left of the server (dead, or hung) and start it again; a start that fails ends the tune."""
        self.server.stop(kill=True)  # dead already, or hung: a scratch server owes nothing a graceful stop
        try:
            self.server.start()
        except QuantserveError as exc:
            raise QuantserveError(
                f"tritonserver {cause} during trial {self.count} ({config.label()}) and did not "
                f"start again: {str(exc).splitlines()[0]}"
            ) from exc

    def _measure(self, config: ServingConfig, rivals: Sequence[Trial]) -> Trial:
        """The trial's windows. A stop after its last window ran to its planned end cut nothing: the trial, finished
        as any other, is raised whole (`TrialInterrupted.whole`); one before or inside a window cuts it
        (`cut_trial`)."""
        slo = self.settings.slo_p99_ms
        kept: list[Samples | None] = []  # the windows measured: an interrupt keeps them (`tune_interrupted`)
        self.stop_after = None
        try:
            trial = self._windows(config, rivals, kept)
        except QuantserveError as exc:
            trial = Trial(config, 0.0, math.nan, math.nan, 0, 0.0, error=" ".join(str(exc).split())[:300])
        except KeyboardInterrupt as stop:  # the window in progress up to the interrupt, and those before it
            kept.append(stop.samples if isinstance(stop, WindowInterrupted) else None)
            raise TrialInterrupted(cut_trial(config, slo, kept)) from None
        if self.stop_after is not None:  # its last window had ended whole when the stop came: a finished trial
            raise TrialInterrupted(trial, whole=True)
        return trial

    def _windows(self, config: ServingConfig, rivals: Sequence[Trial], kept: list[Samples | None]) -> Trial:
        slo = self.settings.slo_p99_ms
        self.install(config)
        first = self._window(kept, 1)
        if first.gone is not None:  # its model went away: no second window, no pruning, no figure
            return first.trial(config, slo)
        if first.ok.size and not first.ok.any():  # every request refused: a second window says nothing more
            return first.trial(config, slo)
        one = first.trial(config, slo)
        one.first_window = {"throughput_rps": one.throughput_rps, "goodput_rps": one.goodput_rps}
        if clearly_worse(one, rivals):
            return replace(one, pruned=True)
        measured = (first + self._window(kept, 2, self.second_window_s(first))).trial(config, slo)
        if not measured.error:  # a trial cut short keeps no figure, its window 1's neither (`failed_trial`)
            measured.first_window = one.first_window
        # nothing came back in the window (its model still served): a failed trial, not a slow one
        if measured.requests == 0 and not measured.cut_short:
            raise QuantserveError(f"no request completed in {measured.window_s:g} s of measured load")
        return measured

    def _window(self, kept: list[Samples | None], index: int, window_s: float | None = None) -> Samples:
        """Window `index`, kept. A stop after it ran to plan returns it as finished, the stop held (`stop_after`):
        the trial ends if this was its last window, and is cut before its next one opens (none is started)."""
        if self.stop_after is not None:  # the trial wanted another window: it is cut here, its whole ones kept
            raise WindowInterrupted(None)
        try:
            samples = self.window(index, window_s)
        except WindowInterrupted as stop:
            if not stop.whole or stop.samples is None:
                raise
            self.stop_after, samples = stop, stop.samples
        kept.append(samples)
        return samples

    def second_window_s(self, first: Samples) -> float:
        """Closed loop: stretched until the trial holds enough requests at its own rate. A trace: what the trace alone
        decides, so every trial's window 2 sees the same part of it (`tune_trace`)."""
        from quantserve.cli.tune_trace import trace_second_window_s

        if self.settings.trace is not None:
            return trace_second_window_s(self.settings)
        return second_window_s(first, self.settings.window_s)

    def confirm(self, baseline: ServingConfig, best: ServingConfig) -> tuple[Trial, Trial]:
        """Baseline then winner measured again, back to back, as every trial is (two windows, no pruning).

        The search's best figure is the luckiest of many noisy measurements (the winner's curse);
        this one was not selected on, and pairs the two under the same machine load.
        """
        measured: list[Trial] = []
        try:
            measured.append(self.run(baseline))
            if best != baseline:
                measured.append(self.run(best))
        except KeyboardInterrupt as stop:  # the run it cut, and the baseline's measured whole (`tune_interrupted`)
            cut = stop if isinstance(stop, TrialInterrupted) else TrialInterrupted(None)
            raise TrialInterrupted(cut.trial, measured, whole=cut.whole) from None
        return measured[0], measured[-1]

    def window(self, index: int, window_s: float | None = None) -> Samples:
        folder = self.out / "runs" / f"trial{self.count:02d}{self.attempt_tag}-w{index}"
        seconds = window_s or self.settings.window_s
        server = self.server
        return measure_window(
            self.settings, server.grpc_url, SCRATCH_MODEL, folder, server.pid, seconds, server.metrics_url, self.version
        )


def server_failed(trial: Trial, cause: str, notes: list[str]) -> Trial:
    """The trial the server died in twice: failed, no figure of this configuration (its windows' requests are those
    that finished before the fault), the deaths said."""
    return failed_trial(trial, f"{cause} (restarted)", server_restarts=notes)


def measure_window(
    settings: TuneSettings,
    url: str,
    model: str,
    folder: Path,
    pid: int | None,
    window_s: float,
    metrics_url: str | None = None,
    version: str = "",
) -> Samples:
    """One Locust run of warm-up + window (closed loop, or the trace from its start); the requests ending in the
    warm-up are discarded. `metrics_url`: the server's, whose counters give Triton's own times (compute, queue): none
    was passed before session 64, so no trial recorded them (`outside_share`, `compute_ms` stayed null). `version`:
    the one just deployed, whose counters alone are counted (`LoadSettings.counters_version`); the requests name
    none, so Triton answers from the newest, that one."""
    from loadtest.harness import run_step
    from loadtest.interruption import StepInterrupted
    from loadtest.load_settings import LoadSettings

    step = settings.load_step()
    # --window-time (`loadtest.recording`): Locust's window opens once every user is spawned and warm and lasts this
    # long; a second added for the spawn (from when Locust's -t counted it) made each window ~1 s over what was asked
    duration = settings.warmup_s + window_s
    load = LoadSettings(url, model, Path(settings.data), step, duration, settings.request_batch)
    load = replace(load, metrics_url=metrics_url, max_in_flight=TRACE_MAX_IN_FLIGHT, counters_version=version)
    try:
        result = run_step(load, step, folder, server_pid=pid)
    except StepInterrupted as stop:  # its requests up to the interrupt are a measurement too: kept, marked
        samples = cut_window(settings, load, step, folder, stop.result)
        # a stop after the window reached its planned end: the finished window's requests, nothing cut
        raise WindowInterrupted(samples, whole=stop.whole and samples is not None) from None
    return window_samples(settings, load, step, folder, result)


def cut_window(settings: TuneSettings, load: Any, step: Any, folder: Path, result: Any) -> Samples | None:
    """An interrupted window's requests up to the interrupt; None where its run recorded none (`result` None) or
    its records cannot be read: the interrupt is what the user asked for, not a new error."""
    if result is None:
        return None
    try:
        return window_samples(settings, load, step, folder, result)
    except QuantserveError:
        return None


def window_samples(settings: TuneSettings, load: Any, step: Any, folder: Path, result: Any) -> Samples:
    """The requests of a window's run (`result`, its load result) that ended after tune's warm-up, from the exact
    records; the window as long as it ran (an interrupted one up to the interrupt)."""
    from loadtest import recording_files
    from loadtest.load_settings import step_paths
    from loadtest.model_gone import gone_at

    record_dir, _ = step_paths(load, step, folder)
    window = recording_files.read_window(record_dir, gone_at(record_dir))  # empty: the model went in the warm-up
    start = window.start + settings.warmup_s
    warmed = min(settings.warmup_s, max(window.end - window.start, 0.0))  # a run cut in its warm-up dropped less
    rows = recording_files.read_latencies(record_dir, start, window.end)
    unanswered = recording_files.read_unanswered(record_dir, window.end)  # a hung server's requests: failed
    rows = np.concatenate([rows, recording_files.unanswered_rows(rows, unanswered, window.end)])
    if rows.size == 0:
        rows = np.zeros((0, 3))
    lags = rows[:, 3] if rows.shape[1] >= 5 and settings.trace else np.zeros(0)  # closed loop: 0, not a figure
    share = result.utilization.others_share if result.utilization is not None else None
    client = (result.generator_lag_p99_ms, result.peak_in_flight, result.max_in_flight) if settings.trace else ()
    seconds = max(window.end - start, 0.0)  # the load result's own window less the warm-up
    samples = Samples(rows[:, 1], rows[:, 2] > 0.5, seconds, lags, dict(result.errors), share, *client)
    samples.outside_share = result.outside_fraction() if settings.trace is None else None
    samples.client_windows = (result.client_window(),) if settings.trace else ()  # loadtest's send-lag reading's
    samples.windows = ((warmed, seconds),)
    counted(samples, result.server)
    samples.gone = gone_in_window(result, settings.warmup_s)
    return samples


def counted(samples: Samples, server: Any) -> None:
    """Triton's compute time of the window's requests and its executions into `samples` (`Trial.compute_ms`), where
    its counters were read (`server`: the load result's `ServerBreakdown`, None where not)."""
    if server is None or server.requests_succeeded <= 0 or server.executions <= 0:
        return
    per_request = server.avg_compute_input_us + server.avg_compute_infer_us + server.avg_compute_output_us
    samples.server_compute_us = per_request * server.requests_succeeded
    samples.server_requests, samples.server_executions = server.requests_succeeded, server.executions


def gone_in_window(result: Any, warmup_s: float) -> Any:
    """Where the window's model stopped being served (`loadtest.model_gone`): its `ModelGone`, `after_s` counted from
    the measured window's start (after tune's warm-up); None where it stayed served."""
    from loadtest.model_gone import gone_of

    if not getattr(result, "model_gone", None):
        return None
    gone = gone_of(result)
    return replace(gone, after_s=max(0.0, gone.after_s - warmup_s))
