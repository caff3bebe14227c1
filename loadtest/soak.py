"""A bounded soak: one long closed-loop run, with the server's memory and the latency drift judged over time.

The memory is the resident set of `tritonserver` plus its children (the Python backend stubs that
run the models), sampled every half second by `UtilizationSampler`. After a warm-up (the first
`WARMUP_FRACTION` of the run) a least-squares line is fitted; the run is "flat" when the growth
that line predicts over the run stays within the margin (`margin_mb`, or `margin_pct` of the
starting RSS, whichever is larger). Latency drift compares the p99 of the first and last windows; where other
processes took a share of the cores differing by `utilization.OTHERS_SHIFT` or more between those two, a note says
the change is not the server's drift alone (p99 decides no exit status, so that alone fails nothing).

A version deployed (or rolled back) during the soak is never judged flat either: the server's memory then holds
another version's stubs, and the first and last windows' p99 are two versions'. A `--soak 2m` across a v1 → v2
deploy at 65 s said "memory flat … p99 +29.2 %", exit 0, and recorded versions ['1'] only; the step's notes (the
version change among them), which a plain load test prints, were dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadtest import recording_files
from loadtest.harness import run_identity, run_step
from loadtest.interruption import MeasuredSteps, RunInterrupted
from loadtest.interruption_record import Interruption
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import load_file_name
from loadtest.load_settings import LoadSettings, step_paths
from loadtest.model_gone import gone_at
from loadtest.result_files import safe_name
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.server_back import ModelsInTurn, restart_kept_on_error
from loadtest.utilization import others_shift
from quantserve.errors import QuantserveError
from quantserve.files import write_atomic
from quantserve.json_files import strict_json

WARMUP_FRACTION = 0.2
EDGE_FRACTION = 0.2  # the first and last windows whose p99 are compared
SERVED_VERSIONS_CHANGED = "served versions changed"  # in a step's note where Triton's counters saw a deploy


@dataclass
class SoakResult:
    """What a soak measured: requests, the RSS trend with its verdict, and p99 in the first and last windows."""

    model: str
    duration_s: float
    users: int
    requests: int
    failed_requests: int
    rss_start_mb: float
    rss_end_mb: float
    rss_slope_mb_per_min: float
    rss_growth_mb: float  # the fitted line's rise over the post-warm-up part of the run
    rss_margin_mb: float
    rss_flat: bool
    p99_first_ms: float
    p99_last_ms: float
    p99_drift_pct: float
    rss_timeline: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)
    server_restarted: str | None = None  # the server was replaced during the soak: never flat, whatever the line
    interrupted: Interruption | None = None  # stopped by Ctrl-C or SIGTERM: judged over `duration_s`, up to then
    identity: RunIdentity | None = None  # its start, served versions, source model and data, as a load run's
    versions_at_end: list[str] | None = None  # the model's versions READY at the end (None: the server not asked)
    versions_changed: str | None = None  # how the served versions changed during the soak: never flat
    notes: list[str] = field(default_factory=list)  # the load step's notes, as a plain load test prints them
    model_version: str = ""  # the version every request named (--model-version); "": Triton's choice, the newest
    precision: str | None = None  # of the version loaded (the addressed one's own, not the newest's), as deployed
    model_gone: str | None = None  # the model stopped being served, which ended the soak: its line (`model_gone`)
    others_share_first: float | None = None  # other processes' share of the cores in the first window (None: unread)
    others_share_last: float | None = None  # and in the last: the two whose p99 are compared

    def save(self, out_dir: Path) -> Path:
        path = Path(out_dir) / soak_file_name(self.model)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, strict_json(dataclasses.asdict(self), indent=2) + "\n")  # NaN as null
        return path

    def summary(self) -> str:
        """Two lines for a terminal, memory trend with its verdict, then the latency drift; then the step's notes."""
        verdict = "flat" if self.rss_flat else "GROWING"
        if self.model_gone:
            verdict = "NOT JUDGED, the model stopped being served during the soak; until then"
        elif self.server_restarted:
            verdict = f"NOT JUDGED, tritonserver restarted during the soak ({self.server_restarted}); until then"
        elif self.versions_changed:
            verdict = f"NOT JUDGED, {self.versions_changed}: two versions' memory and p99; across both"
        notes = "".join(f"\nnote: {note}" for note in (self.p99_neighbour_note(), *self.notes) if note)
        return (
            f"memory {verdict}: {self.rss_start_mb:.0f} → {self.rss_end_mb:.0f} MB, slope "
            f"{self.rss_slope_mb_per_min:+.2f} MB/min, fitted growth {self.rss_growth_mb:+.1f} MB "
            f"(margin {self.rss_margin_mb:.0f} MB)\n"
            f"p99 first {self.p99_first_ms:.2f} ms, last {self.p99_last_ms:.2f} ms ({self.p99_drift_pct:+.1f} %); "
            f"{self.requests} requests, {self.failed_requests} failed over {self.duration_s:.0f} s{notes}"
        )

    def p99_neighbour_note(self) -> str | None:
        """Where other processes' share of the cores differed by `OTHERS_SHIFT` or more between the first and last
        windows, the p99 change is not the server's drift alone: a busy loop in a 30 s soak's last fifth read as
        "p99 first 22.80 ms, last 88.93 ms (+290.1 %)" with only the window-wide "others took 30%". No exit
        status rests on p99 (memory decides it), so a neighbour alone fails no soak."""
        shares = {"first": self.others_share_first, "last": self.others_share_last}
        shift = others_shift(shares)
        if shift is None or math.isnan(self.p99_drift_pct):
            return None
        busiest, quietest = shift
        return (
            f"{self.model}: p99 changed {self.p99_drift_pct:+.1f} % from the first {EDGE_FRACTION:.0%} of the soak "
            f"to the last, but other processes took {shares[busiest]:.0%} of the machine's cores in the {busiest} "
            f"against {shares[quietest]:.0%} in the {quietest}: not the server's drift alone; soak again on a quiet "
            "machine to judge it (p99 decides no exit status)"
        )


def soak_file_name(model: str) -> str:
    """The file a soak of `model` is saved as: `soak-<model>.json`."""
    return f"soak-{safe_name(model)}.json"


def refuse_soak_over_load(out_dir: Path, labels: list[str]) -> None:
    """Before any load, one line where `out_dir` holds a plain load run of one of `labels`: a soak stopped early saves
    what it measured under that run's name (`load-<model>.json`) and records into the same step folder where the
    users match, so an interrupted soak replaced the earlier run in silence (`refuse_replacing` covered the rest)."""
    for label in labels:
        path = Path(out_dir) / load_file_name(label)
        if path.exists():
            raise QuantserveError(
                f"{path}: a load run of '{label}' is saved here, which this soak would replace if stopped early (it "
                "saves what it measured under that name); give the soak another --out, or remove that file"
            )


def refuse_load_over_soak(out_dir: Path, runs: list[tuple[str, str]]) -> None:
    """Before any load, one line where `out_dir` holds a soak of a model of `runs` (label, the file its run saves)
    whose run is closed-loop (`load-<model>.json`, as a soak's when stopped early): the soak's step folder is a
    closed loop's (`<model>-u<users>`), so a plain run or `evaluate --load-duration` at its users cleared its records
    in silence. The mirror of `refuse_soak_over_load`; open-loop and staged runs, filed apart, sit beside a soak."""
    for label, file in runs:
        path = Path(out_dir) / soak_file_name(label)
        if file == load_file_name(label) and path.exists():
            raise QuantserveError(
                f"{path}: a soak of '{label}' is saved here, whose records a closed-loop run of it would clear (they "
                "share its step folders); give this run another --out, or remove that file"
            )


def run_soak(
    settings: LoadSettings,
    out_dir: Path | str,
    server_pid: int | None = None,
    margin_mb: float = 20.0,
    margin_pct: float = 5.0,
    restarted: str | None = None,
) -> SoakResult:
    """Load for `settings.duration_s` with `settings.pattern` (a `ClosedLoop`); judge memory and p99 drift.
    Ctrl-C or SIGTERM saves the load measured up to then as `load-<model>.json` (and the soak judged over it, where
    it is long enough), both marked interrupted, and raises `RunInterrupted`. With --model-version both name the
    version (`m@N`, its own precision) and the soak records it: requests went to it, not to the newest. `restarted`:
    the note of a restart before it (`ModelsInTurn`), saved with the load as an interrupt's is where it fails with an
    error (`restart_kept_on_error`)."""
    if not isinstance(settings.pattern, ClosedLoop):
        raise QuantserveError("a soak runs closed-loop users (--users), not a sweep or an open-loop rate")
    out_dir = Path(out_dir)
    record_dir, _ = step_paths(settings, settings.pattern, out_dir)
    with recording_files.results_folder_held(out_dir):
        identity, precision = run_identity(settings)
        try:
            with MeasuredSteps(settings.label, 1, out_dir, precision, identity) as measured:
                measured.start(settings.pattern.name)
                try:
                    result = run_step(settings, settings.pattern, out_dir, server_pid)
                except Exception as exc:  # not an interrupt: the restart's note kept all the same
                    restart_kept_on_error(measured, settings.pattern.name, exc, restarted, None, out_dir)
                    raise
        except RunInterrupted as stop:
            if stop.run.results:
                with contextlib.suppress(QuantserveError):  # too short to judge: the load file holds what it measured
                    cut = stop.run.interrupted
                    soak = _judge(stop.run.results[0], record_dir, margin_mb, margin_pct, cut, identity)
                    _saved(_versions_checked(soak, settings), settings, precision, out_dir)
            raise
        soak = _judge(result, record_dir, margin_mb, margin_pct, identity=identity)
        return _saved(_versions_checked(soak, settings), settings, precision, out_dir)


def soak_in_turn(in_turn: ModelsInTurn, settings: LoadSettings, out_dir: Path | str) -> SoakResult:
    """One model's soak of several (`--soak --model a,b`): a server that stopped answering since the soak before is
    waited for and its restart noted among this soak's notes, or the finished soaks named in one line, exit 1
    (`ModelsInTurn`); the next soak's start had exited 2 with "no Triton server answers". It measures the server
    --server-pid names, followed through such a restart (`ModelsInTurn.told`)."""
    back = in_turn.before(settings)
    try:
        soak = run_soak(settings, out_dir, in_turn.told.pid, restarted=back)
    except RunInterrupted as stop:  # the restart's note kept in the load it saved
        in_turn.noted(stop.run, back)
        raise
    if back:  # it measured the new server from its start: a note, not `server_restarted` (never flat)
        soak.notes.insert(0, f"{soak.model}: {back}")
        soak.save(Path(out_dir))
    in_turn.kept(soak.model, soak_file_name(soak.model), settings)
    return soak


def _versions_checked(soak: SoakResult, settings: LoadSettings) -> SoakResult:
    """The soak with the model's versions READY at its end, judged against those at its start (`versions_judged`)."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    with contextlib.suppress(QuantserveError), TritonGrpcClient(settings.url, 10.0, settings.tls, NO_RETRY) as client:
        soak.versions_at_end = client.ready_versions(settings.model)
    return versions_judged(soak)


def versions_judged(soak: SoakResult) -> SoakResult:
    """A soak across a change of the served versions (READY at the start and at the end differ, or Triton's counters
    said so, `judge_soak`) is never flat: its memory line runs across another version's stubs loaded and the old
    ones' unloaded, and the first and last windows' p99 are of two versions."""
    start, end = soak.identity.versions if soak.identity else [], soak.versions_at_end
    if start and end is not None and end != start and not soak.model_gone:  # gone: its own line says so
        soak.versions_changed = (
            f"model '{soak.model}' served versions changed during the soak ({', '.join(start)} → "
            f"{', '.join(end) or 'none'})"
        )
    soak.rss_flat = soak.rss_flat and not soak.versions_changed
    return soak


def _saved(soak: SoakResult, settings: LoadSettings, precision: str | None, out_dir: Path) -> SoakResult:
    """The soak named and saved as its run is: `m@N`, with the version its requests named and that one's precision
    (a soak of version 1 beside a newer INT8 version 2 recorded neither)."""
    soak.model, soak.model_version, soak.precision = settings.label, settings.model_version, precision
    soak.save(out_dir)
    return soak


def _judge(
    result: LoadResult,
    record_dir: Path,
    margin_mb: float,
    margin_pct: float,
    interrupted: Interruption | None = None,
    identity: RunIdentity | None = None,
) -> SoakResult:
    """The soak judged over the window its Locust run recorded (in `record_dir`)."""
    window = recording_files.read_window(record_dir, gone_at(record_dir))
    samples = recording_files.read_latencies(record_dir, window.start, window.end)
    soak = judge_soak(result, window.start, window.end, samples, margin_mb, margin_pct)
    soak.interrupted, soak.identity = interrupted, identity
    return soak


def judge_soak(
    result: LoadResult, start: float, end: float, samples: np.ndarray, margin_mb: float, margin_pct: float
) -> SoakResult:
    """The soak's verdict from its load step: the RSS line after warm-up and the p99 drift. A server replaced
    during the soak (a leak the kernel's OOM killer ended, then `quantserve serve` restarted it) is never
    flat: the new process's memory starts low again, and a line across both read a leak as a fall."""
    utilization = result.utilization
    if utilization is None or not any("process_rss_mb" in r for r in utilization.timeline):
        if result.server_restarted:
            raise QuantserveError(
                f"soak {result.model}: tritonserver restarted during the soak ({result.server_restarted}) before "
                "any memory sample; nothing to judge"
            )
        raise QuantserveError("no tritonserver memory samples: pass --server-pid (the server is not local?)")
    rss = [(r["t"] - start, r["process_rss_mb"]) for r in utilization.timeline if "process_rss_mb" in r]
    if not result.server_restarted and not result.model_gone:
        trend, drift = memory_trend(rss, margin_mb, margin_pct), latency_drift(samples, start, end)
    else:  # not flat (server replaced, model gone); the line and p99s are evidence where there is enough
        trend = _or_none(lambda: memory_trend(rss, margin_mb, margin_pct)) or {
            "rss_start_mb": rss[0][1],
            "rss_end_mb": rss[-1][1],
            "rss_slope_mb_per_min": math.nan,
            "rss_growth_mb": math.nan,
            "rss_margin_mb": margin_mb,
        }
        trend["rss_flat"] = False
        drift = _or_none(lambda: latency_drift(samples, start, end)) or dict.fromkeys(
            ("p99_first_ms", "p99_last_ms", "p99_drift_pct"), math.nan
        )
    others = edge_others(result, start, end)
    soak = SoakResult(
        model=result.model,
        duration_s=end - start,
        users=result.users,
        requests=result.requests,
        failed_requests=result.failed_requests,
        rss_timeline=rss,
        **trend,
        **drift,
        server_restarted=result.server_restarted,
        versions_changed=_counted_version_change(result),
        others_share_first=others[0],
        others_share_last=others[1],
        notes=result.notes(),
        model_gone=result.model_gone["line"] if result.model_gone else None,
    )
    return versions_judged(soak)


def edge_others(result: LoadResult, start: float, end: float) -> tuple[float | None, float | None]:
    """Other processes' share of the cores in the first and last EDGE_FRACTION of the window, whose p99 are
    compared (`latency_drift`); none where the server was replaced (the samples followed a stopped process)."""
    utilization, edge = result.utilization, EDGE_FRACTION * (end - start)
    if utilization is None or result.server_restarted:
        return None, None
    return utilization.others_share_between(start, start + edge), utilization.others_share_between(end - edge, end)


def _counted_version_change(result: LoadResult) -> str | None:
    """The change of the served versions Triton's counters saw during the step (None: none), as its note says it."""
    counters = result.server_counters_left_out or ""
    if not counters.startswith(f"model '{result.model}' {SERVED_VERSIONS_CHANGED}"):
        return None
    return counters.split(": ")[0]


def _or_none(measure: Any) -> dict[str, Any] | None:
    try:
        return measure()  # type: ignore[no-any-return]
    except QuantserveError:
        return None


def memory_trend(rss: list[tuple[float, float]], margin_mb: float, margin_pct: float) -> dict[str, Any]:
    """Slope (MB/min) of a line fitted after the warm-up, its growth over that span, and the verdict."""
    t, mb = np.array([p[0] for p in rss]), np.array([p[1] for p in rss])
    steady = t >= t.min() + WARMUP_FRACTION * (t.max() - t.min())
    if steady.sum() < 3:
        raise QuantserveError(f"only {int(steady.sum())} memory samples after warm-up: soak for longer")
    slope, _ = np.polyfit(t[steady], mb[steady], 1)
    growth = float(slope * (t[steady].max() - t[steady].min()))
    margin = max(margin_mb, margin_pct / 100 * float(mb[steady][0]))
    return {
        "rss_start_mb": float(mb[steady][0]),
        "rss_end_mb": float(mb[-1]),
        "rss_slope_mb_per_min": float(slope * 60),
        "rss_growth_mb": growth,
        "rss_margin_mb": margin,
        "rss_flat": bool(growth <= margin),
    }


def latency_drift(samples: np.ndarray, start: float, end: float) -> dict[str, Any]:
    """p99 of the successful requests in the first and last EDGE_FRACTION of the window, and the change."""
    span = end - start
    ok = samples[samples[:, 2] > 0.5] if samples.size else np.zeros((0, 3))
    first = ok[ok[:, 0] <= start + EDGE_FRACTION * span, 1]
    last = ok[ok[:, 0] >= end - EDGE_FRACTION * span, 1]
    if not first.size or not last.size:
        raise QuantserveError("no successful requests in the first or last window of the soak")
    p99_first, p99_last = float(np.percentile(first, 99)), float(np.percentile(last, 99))
    return {"p99_first_ms": p99_first, "p99_last_ms": p99_last, "p99_drift_pct": 100 * (p99_last / p99_first - 1)}
