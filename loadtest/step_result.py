"""One measured step's `LoadResult`, read from what its Locust processes recorded over exactly its window: the
requests left unanswered or never sent, the server's counters judged whole or not (a server restarted or a
version swapped during the window covers only part of it), and a staged load's figures per stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from loadtest import recording_files
from loadtest.client_lags import peak_with_unanswered
from loadtest.length_figures import length_figures
from loadtest.load_pattern import LoadStep
from loadtest.load_settings import LoadSettings, step_paths
from loadtest.model_gone import cut_short, gone_at, read_gone
from loadtest.partial_counters import counters_not_whole, server_shutting_down
from loadtest.percentiles import LatencySummary, cdf_points
from loadtest.results import NO_PROCESS_AT_END, UNANSWERED_ERROR, LoadResult
from loadtest.server_pids import ServerPids, listening_pid, replaced_before_window
from loadtest.stage_figures import read_stage_starts, stage_figures, version_spans
from loadtest.timeline import busiest_second_rps, deadline_silence, outages, per_second
from loadtest.triton_metrics import (
    addressed_version,
    breakdown,
    counters_went_back,
    other_models_requests,
    others_kept_counting,
    versions_changed,
)
from loadtest.utilization import Utilization, UtilizationSampler
from serving.tls import ClientTls

LIVENESS_TIMEOUT_S = 2.0  # a server that answers nothing within this at the end of a run has stopped answering


def step_result(
    settings: LoadSettings,
    step: LoadStep,
    out_dir: Path,
    pids: ServerPids,
    sampler: UtilizationSampler,
    lost: list[str],
) -> LoadResult:
    """The step's result from what its Locust processes recorded, with the server's counters judged whole or not:
    a server replaced before the window opened (`pids`: those seen listening) is no restart during it."""
    record_dir, csv_prefix = step_paths(settings, step, out_dir)
    whole = recording_files.read_window(record_dir, gone_at(record_dir))  # none: gone in the warm-up
    window = addressed_window(whole, settings)
    at_end = pid_at_window_end(record_dir, settings.url)
    pids.saw(at_end)
    restarted = _server_restarted(pids.at_window(window.start), at_end, window, settings.model)
    utilization = sampler.result(window.start, window.end)
    result = _result_of_window(settings, step, record_dir, window, csv_prefix, utilization)
    if not restarted and at_end is not None:
        restarted = server_shutting_down(
            at_end, result.errors, whole, settings.model, lambda: server_live(settings.url, settings.tls)
        )
    result.utilization, result.lost_workers = utilization, lost
    if whole.metrics_before is not None and whole.metrics_after is not None:  # load the server's CPU carried too
        result.other_models = other_models_requests(whole.metrics_before, whole.metrics_after, settings.model)
    if restarted:  # the new process's counters began at zero: their delta covers part of the window
        result.server_restarted, result.server = restarted, None  # samples kept (a soak's evidence), never shown
    elif partial := counters_not_whole(window, result, warm_ups_in_window(record_dir), settings.counted_version):
        result.server_counters_left_out, result.server = partial, None
    result.locust_csv_prefix, result.warm_up = str(csv_prefix.relative_to(out_dir)), warm_up(record_dir)
    if replaced := replaced_before_window(pids.seen, window.start):  # said, the counters kept
        result.warm_up = {**(result.warm_up or {}), "server_restarted": replaced}
    return result


def pid_at_window_end(record_dir: Path, url: str) -> int | None:
    """The process listening on the server's port when the window closed, as the window file records it
    (`recording.close_window`); looked up now where it does not (a file from before). Read after Locust had exited,
    a tritonserver killed just after the window closed (between two steps: `serve` restarts it, the next step says
    so) read as stopped during the window, "no process at the end", and the step's server figures were left out."""
    path = record_dir / recording_files.WINDOW_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}
    if isinstance(record, dict) and "listening_pid" in record:
        pid = record["listening_pid"]
        return int(pid) if isinstance(pid, int) and pid > 0 else None
    return listening_pid(url)


def addressed_window(window: recording_files.Window, settings: LoadSettings) -> recording_files.Window:
    """The window with the model's counters those of the version --model-version addresses alone, or of the one the
    run counts (`LoadSettings.counted_version`, `addressed_version`): Triton sums all served versions into the
    model's, so another client loading version 2 while version 1 was measured dropped the server breakdown ("counts
    disagree") instead of showing version 1's."""
    if not settings.counted_version:
        return window

    def view(scrape: dict | None) -> dict | None:
        return None if scrape is None else addressed_version(scrape, settings.model, settings.counted_version)

    return dataclasses.replace(
        window, metrics_before=view(window.metrics_before), metrics_after=view(window.metrics_after)
    )


def _result_of_window(
    settings: LoadSettings,
    step: LoadStep,
    record_dir: Path,
    window: recording_files.Window,
    csv_prefix: Path,
    utilization: Utilization | None = None,
) -> LoadResult:
    """The window's result from what the Locust processes recorded, with the requests they left unanswered (failed
    or still in flight), open loop the arrivals they never sent, and whether the model's going away ended it; each
    stage's others' share of the cores from `utilization` (None: not sampled)."""
    samples = recording_files.read_latencies(record_dir, window.start, window.end)
    unanswered = recording_files.read_unanswered(record_dir, window.end)
    answering = _answering_at_end(settings, window, samples, unanswered)
    stuck = recording_files.unanswered_rows(samples, unanswered, window.end, answering)
    rows = np.concatenate([samples, stuck])
    result = _summarize(settings, step, window, rows, csv_prefix)
    result.stages = stage_figures(rows, window.start, window.end, read_stage_starts(record_dir), utilization)
    result.version_spans = version_spans(rows[rows[:, 2] > 0.5], window.start)
    if hasattr(step, "as_ran"):  # --shape: the users its stages reached, not its dry run's plan
        result.users = step.as_ran(result.stages)
    if len(stuck):
        result.errors[UNANSWERED_ERROR] = len(stuck)
        result.unanswered_max_ms = float(stuck[:, 1].max())
    waits = recording_files.still_in_flight(samples, unanswered, answering)
    if len(waits):
        result.in_flight_at_end, result.in_flight_max_ms = len(waits), float(waits.max())
    result.cut_at_end = len(unanswered) - len(stuck) - len(waits)  # on their way when the stop dropped them
    if result.cut_at_end:  # the overdue ones, counted above, waited longest: the cut are the shortest waits
        result.cut_max_ms = float(np.sort(unanswered[:, 0])[result.cut_at_end - 1])
    if step.mode == "open":
        _count_offered(result, record_dir, window, rows)
        result.peak_in_flight = peak_with_unanswered(  # the pool the unanswered filled: the answered never saw it
            result.peak_in_flight, result.max_in_flight, len(unanswered), result.unsent, result.users
        )
    gone = read_gone(record_dir, window.start, window.end, samples)  # the model stopped being served: the run ended
    return result if gone is None else cut_short(result, gone, step.run_seconds(settings.duration_s))


def _count_offered(result: LoadResult, record_dir: Path, window: recording_files.Window, rows: np.ndarray) -> None:
    """Open loop: the arrivals the schedule offered in the window (`offered_in_window`), each counted once: answered
    or failed in it (`requests`, less those that arrived before it opened), never sent (`unsent`), overdue
    (`in_flight_at_end`), or on their way at its end (`cut_at_end`: sent and unanswered, answered after it, or due
    within UNSENT_FLOOR_MS of it). Counted by what ended in the window instead, arrivals answered after the stop,
    sent after it, or due in its last quarter second were in no count: 1439 offered of 1521 at 300 req/s. On their
    way are at most what the in-flight slots hold (`max_in_flight` a user) beside the overdue: the rest waited in
    the client behind a full pool, never sent (a trace at 4812 req/s through 64 slots to a server answering ~600
    read "1253 on their way at the end", 1220 of them due in the last quarter second behind 20245 unsent). Also the
    most of them in a second of the window (`busiest_second_rps`), the report's one busiest second."""
    result.unsent = recording_files.read_unsent(record_dir, window.end, window.start)
    arrived = rows[:, 0] - rows[:, 1] / 1000.0 if len(rows) else np.zeros(0)  # latency counts from the arrival
    result.arrived_before_window = int((arrived < window.start).sum())
    arrivals = recording_files.read_arrivals(record_dir)
    offered = recording_files.offered_in_window(arrivals, window.start, window.end)
    result.peak_offered_rps = busiest_second_rps(arrivals, window.start, window.end)
    accounted = result.requests - result.arrived_before_window + result.unsent + result.in_flight_at_end
    residual, slots = max(0, offered - accounted), result.users * (result.max_in_flight or 1)
    held = result.in_flight_at_end + result.errors.get(UNANSWERED_ERROR, 0)  # sent, unanswered: slots taken
    result.offered_requests, result.cut_at_end = offered, min(residual, max(0, slots - held))
    result.offered_window_s = min(window.end, window.planned_end or window.end) - window.start
    result.unsent += residual - result.cut_at_end  # more than the slots hold: queued behind a backlog, never sent


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
        server = breakdown(window.metrics_before, window.metrics_after, settings.model, settings.counted_version)
    lag_p50, lag_p99, generator_p99 = _send_lags(samples) if step.mode == "open" else (None, None, None)
    rated, rate_span = _rated(step, window, samples, ok)
    columns = samples.shape[1] if samples.ndim == 2 and len(samples) else 0  # a window with no arrival has no rows
    # in flight as each request arrived, itself included: --max-in-flight + 1 where one found every slot taken
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
        throughput_rps=float(rated.sum() / rate_span) if rate_span > 0 else math.nan,
        inferences_per_s=_samples_sent(samples, rated, settings.request_batch) / rate_span
        if rate_span > 0
        else math.nan,
        latency=LatencySummary.from_samples(latencies),
        request_batch=recorded_request_batch(step, settings.request_batch),
        workers=settings.workers,
        server=server,
        **step.recorded(settings.workers),
        cdf=cdf_points(latencies),
        errors=recording_files.read_failures(csv_prefix),
        metrics_missing="; ".join(window.metrics_errors) or None,
        timeline=timeline,
        outages=outages(samples, window.start, window.end),
        deadline_failures=int((~ok & (samples[:, recording_files.DEADLINE_COLUMN] > 0.5)).sum()) if len(ok) else 0,
        early_deadline_failures=int((~ok & (samples[:, recording_files.DEADLINE_COLUMN] > 1.5)).sum())
        if len(ok)
        else 0,
        deadline_silence=deadline_silence(samples, window.start),
        request_timeout_s=settings.request_timeout_s,
        queue_delay_s=settings.queue_delay_s,
        lengths=length_figures(samples, list(settings.cut_by or {})),
        cut_by=settings.cut_by,
        padding_note=settings.padding_note,
    )


def _rated(
    step: LoadStep, window: recording_files.Window, samples: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, float]:
    """The answers an open loop's rates count, and the span they divide by: those that came by the planned end,
    over the planned window, as perf_analyzer's request-rate windows count. Its schedule offers nothing after that
    end, so the window's run on to its last answer (`recording_files.measured_end`) held only what was already
    late: one request answered 1.95 s after a 4 s trace replay's end (CI, loaded) divided 140 answers of 140
    offered at 35 req/s by 5.95 s, "23.5 req/s". Past capacity the count is the same: what the server answered in
    the planned window. A closed loop sends on to the stop, so its rates keep the whole window; so does a window
    cut short."""
    span = window.end - window.start
    if step.mode != "open" or window.planned_end is None or window.end <= window.planned_end or not len(ok):
        return ok, span
    return ok & (samples[:, 0] <= window.planned_end), window.planned_end - window.start


def recorded_request_batch(step: LoadStep, request_batch: int) -> int | None:
    """The request size a step's result records: --request-batch, or None where a replayed trace set each request's
    samples (its `trace` record says them: mean, max, how many sizes). It recorded `request_batch: 1` (or a --request-
    batch given beside the trace, unused) for requests of 1 to 32 samples, and runs are paired by it."""
    return None if getattr(getattr(step, "trace", None), "sizes", None) is not None else request_batch


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


def _server_restarted(
    pid_before: int | None, pid_after: int | None, window: recording_files.Window, model: str
) -> str | None:
    """How a server replaced during the window showed (None: it was not): another process listening on its port
    at the end than when the window opened (`pid_before`, `ServerPids.at_window`: `quantserve serve` restarts a
    tritonserver that died, and one it restarted before the window opened served it whole), none at all, or Triton's
    cumulative counters lower at the end than at the start. A restarted server's counters begin again at zero,
    so their delta over the window counted only the time since: a run whose server was killed 11 s into 20
    reported the last 5 s's batch size and queue time as the window's. The model's counters alone going back,
    while the same pid listened throughout or another model's counters went on, is the model unloaded or reloaded
    (`counters_not_whole` says which), not a restart: its folder moved out of the repository 12 s into 20 read
    as "tritonserver restarted" though one process served throughout."""
    if pid_before is not None and pid_after is not None and pid_after != pid_before:
        return f"pid {pid_before} listened on its port at the start, pid {pid_after} at the end"
    if pid_before is not None and pid_after is None:
        return f"pid {pid_before} listened on its port at the start, {NO_PROCESS_AT_END}"
    before, after = window.metrics_before, window.metrics_after
    if before is None or after is None or versions_changed(before, after, model):  # a version swap, not a restart
        return None
    if counters_went_back(before, after, model):
        if (pid_before is not None and pid_before == pid_after) or others_kept_counting(before, after, model):
            return None  # the same process: the model alone lost its counters
        return f"Triton's cumulative counters were lower at the end than at the start (or model '{model}' reloaded)"
    return None


def warm_up(record_dir: Path) -> dict[str, Any] | None:
    """The users' warm-ups as the window file records them (`loadtest.recording`; None: none were sent, or a file
    from before, an open loop's before session 26): requests, failed, max_ms, warm_up_s (how long after the spawn
    the window opened, waiting for them), in_window (ended after it opened), unfinished (why it opened before they
    all ended)."""
    path = record_dir / recording_files.WINDOW_FILE
    record = json.loads(path.read_text()).get("warm_up") if path.is_file() else None
    return record if isinstance(record, dict) else None


def warm_ups_in_window(record_dir: Path) -> int:
    """The warm-up requests that ended inside the window: Triton counted them, the client reported none."""
    record = warm_up(record_dir)
    return int(record.get("in_window", 0)) if record else 0
