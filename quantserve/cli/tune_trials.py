"""One trial of `quantserve tune`: its data (configuration, settings, figures) and how its figures are computed.

A trial's figures come from the exact per-request latencies the harness records, the requests that end
during the warm-up dropped. The server that deploys and measures each trial is `quantserve.cli.tune_server`;
the winner's deploy and its re-measure are `quantserve.cli.tune_winner`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.cli.tune_errors import commonest_error, window_count
from quantserve.cli.tune_prune import RULE

WARMUP_S = 2.0  # after all users are spawned: ORT's first runs, batcher queues filling, gRPC channels warm
WINDOW_S = 5.0  # per window, two windows per trial: >= 1000 requests even at 100 req/s, so p99 rests on >= 10
QUICK_WARMUP_S = 1.0
QUICK_WINDOW_S = 3.0  # Locust takes whole seconds: warm-up + window must be an integer
QUICK_TRIALS = 6
SEED = 0
MIN_REQUESTS = 1000  # per trial: p99 then rests on >= 10 tail samples; the second window stretches to reach it
MAX_STRETCH = 3.0  # ... but to at most this many windows
SCRATCH_MODEL = "tune_candidate"
TRACE_WINDOW_S = 30.0  # a trace's window: one pass of it, at most this long (its first 30 s after the warm-up)
QUICK_TRACE_WINDOW_S = 10.0
# a trace's requests a Locust process keeps in flight: enough that a burst's backlog waits in Triton's queue,
# where the configuration under test decides its fate, not in the client (64, loadtest's default, held FP32's
# burst backlog in the client: p99 send lag 1.06 s)
TRACE_MAX_IN_FLIGHT = 512
TIE_SHARE = 0.01  # a trace offers every trial the same load: goodputs this close are a tie, broken by p99
LIVENESS_TIMEOUT_S = 10.0  # after a trial: a server that cannot say it is live in this long is hung
# per window, the worst kept
WORST_OF = ("others_share", "generator_lag_p99_ms", "peak_in_flight", "max_in_flight", "outside_share")
TIES = f"trace: goodput within {TIE_SHARE:.0%} of the most is a tie, won by the lowest p99"


@dataclass(frozen=True)
class ServingConfig:
    """One point of the search space."""

    max_batch: int  # 0 = no dynamic batching (the naive baseline)
    preferred: tuple[int, ...]  # preferred batch sizes (empty = none: no batching)
    max_queue_delay_us: int
    instances: int
    precision: str = ""  # "fp32"/"int8" label of the build used ("" when one build)

    def label(self) -> str:
        """E.g. "int8 mb16 pref 8,16 q500us x2"."""
        head = f"{self.precision} " if self.precision else ""
        if self.max_batch == 0:
            return f"{head}no batching x{self.instances}"
        pref = ",".join(map(str, self.preferred))
        return f"{head}mb{self.max_batch} pref {pref} q{self.max_queue_delay_us}us x{self.instances}"


@dataclass
class Trial:
    """One configuration as measured: client-side figures over the measured windows."""

    config: ServingConfig
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    failed_requests: int
    goodput_rps: float  # requests/s whose latency met the SLO
    pruned: bool = False
    requests: int = 0
    window_s: float = 0.0
    error: str = ""
    send_lag_p99_ms: float | None = None  # open loop (--trace): how late requests left the client (p99)
    fastest_ms: float = math.nan  # the fastest successful request: what no configuration serves faster
    mean_ms: float = math.nan  # successful requests' mean latency: a closed loop's cycle less the client's own time
    # Locust's commonest failure over the trial's runs (`commonest_error`): where every request failed, what Triton
    # said is the one thing the user needs (`tune_failed`); its count is of the measured windows' failures
    # (`window_count`: Locust's table also counts the warm-up's), so never above failed_requests
    commonest_failure: str = ""
    commonest_failure_count: int = 0
    # the worst of its windows: the share of the machine's cores other processes took (`Utilization.others_share`;
    # a shared machine misses an SLO an idle one meets), and, open loop, how late the generator itself woke (p99)
    # and the most requests in flight against the limit: which part of the client held a late send (`tune_verdict`)
    others_share: float | None = None
    generator_lag_p99_ms: float | None = None
    peak_in_flight: int | None = None
    max_in_flight: int | None = None
    # closed loop, where Triton's counters were read: the share of the client's mean latency spent outside Triton
    # (`LoadResult.outside_fraction`: the load generator on this machine's cores, serialization, transfer), the worst
    # window's; a high one holds every trial's rate down alike and so the gain over the baseline (`tune_verdict`)
    outside_share: float | None = None
    # its model stopped being served mid-trial (`loadtest.model_gone`): not a measurement, `error` says where
    cut_short: bool = False
    # each measured window as it ran: the warm-up dropped before it and its own length (`window_s` is their sum),
    # the load result's, not the settings' (which say what was asked)
    windows: list[dict[str, float]] = field(default_factory=list)
    # Ctrl-C or SIGTERM came during its windows: the figures are of what was measured up to it (`windows` says how
    # much), a partial trial, kept rather than lost, and never ranked as a complete one (`tune_interrupted`)
    interrupted: bool = False
    # tritonserver found dead before the trial, or dead in its first attempt and the trial measured again: each
    # restart said (a death from outside is not the configuration's; only a second one in the retry fails it)
    server_restarts: list[str] = field(default_factory=list)
    # its first window's throughput_rps and goodput_rps: with a trace, windows see different parts of it, and a
    # trial is pruned on window 1 against the others' window 1 (`tune_trace`); {} where not measured
    first_window: dict[str, float] = field(default_factory=dict)
    # Triton's compute time (input + infer + output) per request, from its counters: each request counts the whole
    # execution it ran in, so this is an execution's compute as its requests saw it, and requests_per_execution how
    # many shared one (1.0: none batched together); None where the counters were not read (`tune_reach`)
    compute_ms: float | None = None
    requests_per_execution: float | None = None
    # open loop: each window's client as loadtest's send-lag reading reads it (`loadtest.client_lags.ClientWindow`,
    # as JSON: its lags, the unanswered and unsent at its end, its stall, outages and timeline), which
    # `tune_verdict.send_lag_line` reads; [] closed loop, or a file from before session 66
    client_windows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"]["preferred"] = list(self.config.preferred)
        return data


@dataclass(frozen=True)
class TuneSettings:
    """What to tune, against which SLO, and where the winner and the report go."""

    builds: dict[str, Path]  # label -> optimize build folder (one or two: {"int8": ..., "fp32": ...})
    data: Path  # .npz of request inputs
    slo_p99_ms: float
    repo: Path
    name: str
    out: Path
    max_trials: int = 12
    quick: bool = False  # small search, short windows: for the demo, tests and `bench`
    users: int = 16  # closed-loop concurrency of every trial
    request_batch: int = 1
    trace: Path | None = None  # recorded arrivals every trial replays open loop instead (`loadtest --trace`)
    trace_speed: float = 1.0
    trace_scale: float = 1.0
    allow_slo_miss: bool = False  # deploy the best even when its p99 misses the SLO (else nothing is deployed)

    def load_step(self) -> Any:
        """What every trial, the confirmation and the re-measure offer: `users` in a closed loop, or the trace."""
        return self._load_step

    @cached_property
    def _load_step(self) -> Any:
        """Built once: a trace step reads and parses its file once, not at every window of every trial."""
        from loadtest.load_pattern import ClosedLoop, TraceReplay

        return (
            TraceReplay(str(self.trace), self.trace_speed, self.trace_scale) if self.trace else ClosedLoop(self.users)
        )

    @property
    def request_rows(self) -> int:
        """Samples in the largest request the load sends: --request-batch, or a trace's largest request size. A
        configuration batches whole requests of that many, so no request is ever larger than its max batch."""
        sizes = self.load_step().trace.sizes if self.trace else None
        return int(sizes.max()) if sizes is not None else self.request_batch

    @property
    def warmup_s(self) -> float:
        return QUICK_WARMUP_S if self.quick else WARMUP_S

    @property
    def window_s(self) -> float:
        """Closed loop: WINDOW_S. A trace: one pass of it in whole seconds, so every window meets all its bursts
        (a 5 s window of a trace with a burst every 5 s after a 2 s warm-up may hold none), capped."""
        if self.trace:
            from loadtest.trace_plan import whole_pass_seconds  # the pass rounded to the ms first: 3.0000000000000004 s

            cap = QUICK_TRACE_WINDOW_S if self.quick else TRACE_WINDOW_S
            return float(min(whole_pass_seconds(self.load_step().trace.period_s), cap))
        return QUICK_WINDOW_S if self.quick else WINDOW_S

    @property
    def search_trials(self) -> int:
        """Trials after the baseline: --max-trials, at most QUICK_TRIALS in quick mode."""
        return min(self.max_trials, QUICK_TRIALS) if self.quick else self.max_trials

    def labels(self) -> list[str]:
        return list(self.builds) if len(self.builds) > 1 else [""]

    def build_for(self, precision: str) -> Path:
        return self.builds[precision] if precision else next(iter(self.builds.values()))

    def baseline(self) -> ServingConfig:
        """No dynamic batching, one instance; FP32 where there is an FP32 build (what a user deploys first)."""
        labels = self.labels()
        return ServingConfig(0, (), 0, 1, "fp32" if "fp32" in labels else labels[0])

    def to_json(self) -> dict[str, Any]:
        step = self.load_step()
        return {
            "name": self.name,
            "repo": str(self.repo),
            "builds": {k: str(v) for k, v in self.builds.items()},
            "data": str(self.data),
            "slo_p99_ms": self.slo_p99_ms,
            "users": None if self.trace else self.users,
            "load": step.mode,
            "trace": step.trace.summary(self.trace_speed, self.trace_scale) if self.trace else None,
            "max_in_flight": TRACE_MAX_IN_FLIGHT if self.trace else None,
            "request_batch": self.request_batch,
            "warmup_s": self.warmup_s,
            "window_s": self.window_s,
            "windows_per_trial": 2,
            "max_trials": self.search_trials,
            "quick": self.quick,
            "sampler": f"optuna TPE, seed {SEED}",
            "pruning": RULE,
            "goodput": "successful requests with latency <= SLO per second of measured window (exact latencies)",
            "ties": TIES if self.trace else "",
        }


@dataclass
class Samples:
    """Exact latencies (ms) and success flags of the requests that ended inside measured windows."""

    latencies_ms: np.ndarray
    ok: np.ndarray
    seconds: float
    send_lags_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # open loop: each request's send lag
    errors: dict[str, int] = field(default_factory=dict)  # Locust's failure table: {message: occurrences}
    # the window's load result's (`Trial`'s fields of the same names): the worst of the windows once added
    others_share: float | None = None
    generator_lag_p99_ms: float | None = None
    peak_in_flight: int | None = None
    max_in_flight: int | None = None
    outside_share: float | None = None
    # the model stopped being served (`loadtest.model_gone.ModelGone`), its `after_s` into the measured time
    gone: Any = None
    windows: tuple[tuple[float, float], ...] = ()  # per window: (warm-up dropped, seconds measured), as they ran
    # Triton's counters over the windows where they were read: summed compute µs (per request), requests, executions
    server_compute_us: float = 0.0
    server_requests: int = 0
    server_executions: int = 0
    client_windows: tuple[Any, ...] = ()  # open loop: each window's `loadtest.client_lags.ClientWindow`

    def __add__(self, other: Samples) -> Samples:
        errors = dict(self.errors)
        for message, count in other.errors.items():
            errors[message] = errors.get(message, 0) + count
        gone = self.gone
        if gone is None and other.gone is not None:
            gone = replace(other.gone, after_s=self.seconds + other.gone.after_s)
        return Samples(
            np.concatenate([self.latencies_ms, other.latencies_ms]),
            np.concatenate([self.ok, other.ok]),
            self.seconds + other.seconds,
            np.concatenate([self.send_lags_ms, other.send_lags_ms]),
            errors,
            **{name: _worst(getattr(self, name), getattr(other, name)) for name in WORST_OF},
            gone=gone,
            windows=self.windows + other.windows,
            server_compute_us=self.server_compute_us + other.server_compute_us,
            server_requests=self.server_requests + other.server_requests,
            server_executions=self.server_executions + other.server_executions,
            client_windows=self.client_windows + other.client_windows,
        )

    def compute(self) -> tuple[float | None, float | None]:
        """Triton's compute ms per request and requests per execution, over the windows its counters were read in."""
        if self.server_requests <= 0 or self.server_executions <= 0:
            return None, None
        return self.server_compute_us / self.server_requests / 1000, self.server_requests / self.server_executions

    def trial(self, config: ServingConfig, slo_ms: float, pruned: bool = False) -> Trial:
        return trial_figures(config, self, slo_ms, pruned)


def trial_figures(config: ServingConfig, samples: Samples, slo_ms: float, pruned: bool = False) -> Trial:
    """Throughput, p50/p99 of successful requests, and goodput (successes within the SLO per second); a trial its
    model's going away cut short is no measurement: named (`cut_line`), no figure kept to rank it by."""
    from loadtest.percentiles import percentile

    good = samples.latencies_ms[samples.ok]
    span = samples.seconds if samples.seconds > 0 else math.nan
    failed = int((~samples.ok).sum())
    commonest = commonest_error(samples.errors)
    trial = Trial(
        config=config,
        throughput_rps=float(good.size / span),
        p50_ms=percentile(good, 50.0),
        p99_ms=percentile(good, 99.0),
        failed_requests=failed,
        goodput_rps=float((good <= slo_ms).sum() / span),
        pruned=pruned,
        requests=int(samples.ok.size),
        window_s=round(samples.seconds, 3),
        send_lag_p99_ms=float(np.percentile(samples.send_lags_ms, 99)) if samples.send_lags_ms.size else None,
        fastest_ms=float(good.min()) if good.size else math.nan,
        mean_ms=float(good.mean()) if good.size else math.nan,
        commonest_failure=commonest[0],
        commonest_failure_count=window_count(samples.errors, commonest[1], failed),
        **{name: getattr(samples, name) for name in WORST_OF},
        windows=[{"warmup_s": round(warm, 3), "window_s": round(seconds, 3)} for warm, seconds in samples.windows],
        compute_ms=samples.compute()[0],
        requests_per_execution=samples.compute()[1],
        client_windows=[window.to_json() for window in samples.client_windows],
    )
    if samples.gone is None:
        return trial
    return failed_trial(trial, cut_line(samples.gone, int(good.size)), cut_short=True)


def failed_trial(trial: Trial, error: str, **changes: Any) -> Trial:
    """The trial as a failed one: its `error`, and no figure of what its windows measured before the fault, as a
    trial whose deploy failed has none (a server that died twice left `requests` 6000 beside 0 req/s in tune.json).
    The share of the cores other processes took is the machine's, not the configuration's: it stays."""
    return Trial(trial.config, 0.0, math.nan, math.nan, 0, 0.0, error=error, others_share=trial.others_share, **changes)


def cut_line(gone: Any, answered: int) -> str:
    """Where the trial's model stopped being served (`gone`: a `loadtest.model_gone.ModelGone`, `after_s` into the
    trial's measured time) and that the trial is no measurement."""
    which = f"model '{gone.model}'" + (f" version {gone.version}" if gone.version else "")
    return (
        f"cut short: {which} stopped being served {gone.after_s:.1f} s into its measured windows (after {answered} "
        "requests answered; unloaded from tune's own server by another client?): not a measurement, not ranked"
    )


def _worst(one: Any, other: Any) -> Any:
    """The larger of two window figures, either of which may be unknown (None)."""
    known = [v for v in (one, other) if v is not None]
    return max(known) if known else None


def meets_slo(trial: Trial, slo_ms: float) -> bool:
    """The one rule for a configuration meeting the SLO: measured whole (not failed, not pruned, not cut by an
    interrupt), every request served, p99 within it. A configuration whose requests fail meets no SLO (probe round 4:
    a model failing 2 % of its requests was deployed as "within the 50 ms SLO", its p99 counting the successes only);
    a partial trial's p99 rests on what its windows held up to the cut (session 31: it was listed as having met it)."""
    whole = not trial.error and not trial.pruned and not trial.interrupted
    served = whole and trial.requests > 0 and trial.failed_requests == 0
    return served and trial.p99_ms <= slo_ms


def met_slo(trials: Sequence[Trial], slo_ms: float) -> list[Trial]:
    """The measured trials that meet the SLO (`meets_slo`)."""
    return [t for t in trials if meets_slo(t, slo_ms)]


def best_trial(trials: list[Trial], traced: bool, slo_ms: float | None = None) -> Trial:
    """The most goodput among complete trials, among those that meet `slo_ms` (`meets_slo`) where any
    does; with a trace (the same offered load for all), goodputs within TIE_SHARE of the most tie, and the lowest p99
    among them wins. The SLO comes first: a demo's tune picked 61 req/s at p99 533 ms (60 good/s) over 52 req/s at
    p99 354 ms, for a 459 ms SLO, and then said nothing met it."""
    measured = [t for t in trials if not t.pruned and not t.error and not t.interrupted]
    # a configuration that fails requests (a model that cannot take a batch) is no winner while one serves them all
    complete = [t for t in measured if not t.failed_requests] or measured or trials[:1]
    complete = (met_slo(complete, slo_ms) if slo_ms is not None else []) or complete
    most = max(t.goodput_rps for t in complete)
    if most <= 0:  # nothing within the SLO anywhere: the tail nearest to it, not whichever came first
        return min(complete, key=lambda t: t.p99_ms if not math.isnan(t.p99_ms) else math.inf)
    if not traced:
        return next(t for t in complete if t.goodput_rps == most)
    tied = [t for t in complete if t.goodput_rps >= (1 - TIE_SHARE) * most]
    return min(tied, key=lambda t: t.p99_ms if not math.isnan(t.p99_ms) else math.inf)


def second_window_s(first: Samples, window_s: float) -> float:
    """Long enough that both windows hold MIN_REQUESTS at the first window's rate; whole seconds, capped."""
    rate = first.ok.size / first.seconds if first.seconds > 0 else 0.0
    missing = MIN_REQUESTS - first.ok.size
    if missing <= 0 or rate <= 0:
        return window_s
    return float(min(max(window_s, math.ceil(missing / rate)), MAX_STRETCH * window_s))
