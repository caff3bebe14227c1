"""`quantserve tune`: the serving configuration with the most goodput under a p99 SLO, found on a live server.

A seeded TPE search (optuna) over max batch size, preferred batch sizes, max queue delay, instance
count and, given FP32 and INT8 builds, precision. One tritonserver in explicit model-control mode
hosts every trial (each trial is a fresh deploy of the candidate into a scratch repository and
one model load: no server restarts). Each trial is measured by the project's own Locust harness at
a fixed closed-loop concurrency, in two windows; after the first window a trial whose goodput is
clearly below the best so far is pruned. The naive baseline (no dynamic batching, one instance)
is the search's first trial. The winner is deployed into the user's repository and re-measured
there by one plain closed-loop load, so the claim is checked by a server that did not search.

Goodput = requests that succeeded with latency <= the SLO, per second of measured window, from
the exact per-request latencies the harness records (not Locust's rounded histogram).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

WARMUP_S = 2.0  # after all users are spawned: ORT's first runs, batcher queues filling, gRPC channels warm
WINDOW_S = 5.0  # per window, two windows per trial: >= 1000 requests even at 100 req/s, so p99 rests on >= 10
QUICK_WARMUP_S = 1.0
QUICK_WINDOW_S = 3.0  # Locust takes whole seconds: warm-up + window must be an integer
QUICK_TRIALS = 6
SPAWN_S = 1.0  # Locust's run time includes spawning the users (all within one second); the window opens after
PRUNE_FRACTION = 0.7  # first-window goodput below 70 % of the best: well past window-to-window noise here
SEED = 0
MAX_BATCH_CHOICES = (0, 2, 4, 8, 16, 32)
DELAY_CHOICES_US = (0, 100, 500, 1000, 2000, 4000)
PREFERRED_CHOICES = ("powers", "max", "half")
SCRATCH_MODEL = "tune_candidate"


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

    @property
    def warmup_s(self) -> float:
        return QUICK_WARMUP_S if self.quick else WARMUP_S

    @property
    def window_s(self) -> float:
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
        return {
            "builds": {k: str(v) for k, v in self.builds.items()},
            "data": str(self.data),
            "slo_p99_ms": self.slo_p99_ms,
            "users": self.users,
            "request_batch": self.request_batch,
            "warmup_s": self.warmup_s,
            "window_s": self.window_s,
            "windows_per_trial": 2,
            "max_trials": self.search_trials,
            "quick": self.quick,
            "sampler": f"optuna TPE, seed {SEED}",
            "pruning": f"after window 1, goodput < {PRUNE_FRACTION:g} x best complete trial's goodput",
            "goodput": "successful requests with latency <= SLO per second of measured window (exact latencies)",
        }


@dataclass
class TuneResult:
    """The search's trials, its winner and the naive baseline; `to_json` is what tune.json holds."""

    trials: list[Trial]
    best: Trial
    baseline: Trial
    seconds: float
    settings: TuneSettings | None = None
    remeasured: dict[str, Any] = field(default_factory=dict)
    deployed: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def gain(self) -> float:
        """Best goodput over the baseline's (NaN when the baseline served nothing within the SLO)."""
        return self.best.goodput_rps / self.baseline.goodput_rps if self.baseline.goodput_rps > 0 else math.nan

    def to_json(self) -> dict:
        return {
            "trials": [t.to_json() for t in self.trials],
            "best": self.best.to_json(),
            "baseline": self.baseline.to_json(),
            "gain": self.gain,
            "winner_precision": self.best.config.precision,
            "search": {
                "trials": len(self.trials),
                "pruned": sum(t.pruned for t in self.trials),
                "failed": sum(bool(t.error) for t in self.trials),
                "seconds": round(self.seconds, 1),
            },
            "settings": self.settings.to_json() if self.settings else {},
            "deployed": self.deployed,
            "remeasured": self.remeasured,
            "machine": self.machine,
        }


def check_settings(settings: TuneSettings) -> None:
    """Every input checked before any server starts; each problem is one line naming it."""
    from quantserve.data import check_against, load_npz
    from serving.deploy import load_artifact
    from serving.model_config import check_model_name

    if not settings.builds:
        raise QuantserveError("tune needs at least one build folder")
    if not settings.slo_p99_ms > 0:
        raise QuantserveError(f"--slo-p99-ms must be positive, got {settings.slo_p99_ms:g}")
    if settings.max_trials < 1:
        raise QuantserveError(f"--max-trials must be at least 1, got {settings.max_trials}")
    if settings.users < 1:
        raise QuantserveError(f"--users must be at least 1, got {settings.users}")
    if settings.request_batch < 1:
        raise QuantserveError(f"--request-batch must be at least 1, got {settings.request_batch}")
    check_model_name(settings.name)
    data = load_npz(settings.data)
    for build in settings.builds.values():
        check_against(settings.data, data, load_artifact(Path(build)).manifest.inputs)


def tune(
    settings: TuneSettings,
    say: Callable[[str], None] = print,
    on_trial: Callable[[Trial, int, int], None] | None = None,
) -> TuneResult:
    """Start its own tritonserver(s) on free loopback ports, search, deploy the winner into
    settings.repo as settings.name, write settings.out/tune.json and tune.html, stop every server."""
    from quantserve.cli.tune_report import write_report
    from serving.machine import cpu_facts

    check_settings(settings)
    started = time.monotonic()
    out = Path(settings.out)
    shutil.rmtree(out / "runs", ignore_errors=True)
    with TrialServer(settings, out) as bench:
        trials = search(settings, bench, say, on_trial)
    best = max((t for t in trials if not t.pruned and not t.error), key=lambda t: t.goodput_rps, default=trials[0])
    baseline = next(t for t in trials if t.config == settings.baseline())
    result = TuneResult(trials, best, baseline, 0.0, settings, machine=cpu_facts().to_dict())
    result.deployed = deploy_winner(settings, best.config)
    say(f"deployed {best.config.label()} into {settings.repo} as {settings.name} v{result.deployed['version']}")
    result.remeasured = remeasure(settings, best, out)
    result.seconds = time.monotonic() - started
    write_report(result, out)
    return result


def search(
    settings: TuneSettings,
    bench: TrialServer,
    say: Callable[[str], None],
    on_trial: Callable[[Trial, int, int], None] | None,
) -> list[Trial]:
    """The baseline first, then TPE-suggested configurations until `search_trials` distinct ones were measured."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    total = settings.search_trials + 1
    trials: list[Trial] = []
    seen: dict[ServingConfig, Trial] = {}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    for params in starting_points(settings):
        study.enqueue_trial(params)

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, settings)
        if config in seen:  # a repeat suggestion costs nothing: the measurement stands
            return seen[config].goodput_rps
        best = max((t.goodput_rps for t in trials if not t.pruned), default=0.0)
        measured = bench.run(config, best)
        seen[config] = measured
        trials.append(measured)
        say(f"trial {len(trials)}/{total}: {config.label()}: {describe(measured)}")
        if on_trial is not None:
            on_trial(measured, len(trials), total)
        if measured.pruned:
            trial.report(measured.goodput_rps, step=1)
            raise optuna.TrialPruned()
        return measured.goodput_rps

    def stop_when_done(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if len(trials) >= total:
            study.stop()

    study.optimize(objective, n_trials=total * 4, callbacks=[stop_when_done])
    return trials


def starting_points(settings: TuneSettings) -> list[dict[str, Any]]:
    """The baseline, then the deploy defaults (max batch 16, powers of two, 500 µs) for each precision."""
    base = settings.baseline()
    points = [_params(base.precision, 0, "powers", 0, 1, settings)]
    for label in sorted(settings.labels(), key=lambda x: x != "int8"):
        points.append(_params(label, 16, "powers", 500, 1, settings))
    return points[: settings.search_trials + 1]


def _params(precision: str, mb: int, pref: str, delay: int, instances: int, settings: TuneSettings) -> dict[str, Any]:
    params: dict[str, Any] = {"max_batch": mb, "preferred": pref, "max_queue_delay_us": delay, "instances": instances}
    if len(settings.builds) > 1:
        params["precision"] = precision
    return params


def max_instances() -> int:
    """Up to the usable cores, at least 2 and at most 4: more instances than cores only contend."""
    from serving.machine import cpu_facts

    return max(2, min(4, cpu_facts().usable_cores))


def suggest_config(trial: Any, settings: TuneSettings) -> ServingConfig:
    """One configuration from optuna's suggestions, normalized so equal deployments compare equal."""
    labels = settings.labels()
    precision = trial.suggest_categorical("precision", labels) if len(labels) > 1 else ""
    max_batch = int(trial.suggest_categorical("max_batch", MAX_BATCH_CHOICES))
    preferred = str(trial.suggest_categorical("preferred", PREFERRED_CHOICES))
    delay = int(trial.suggest_categorical("max_queue_delay_us", DELAY_CHOICES_US))
    instances = int(trial.suggest_int("instances", 1, max_instances()))
    return make_config(precision, max_batch, preferred, delay, instances)


def make_config(precision: str, max_batch: int, preferred: str, delay_us: int, instances: int) -> ServingConfig:
    """The deployable configuration: preferred sizes spelled out; no batching ignores sizes and delay."""
    from serving.model_config import default_preferred_batch_sizes

    if max_batch == 0:
        return ServingConfig(0, (), 0, instances, precision)
    sizes = {
        "powers": default_preferred_batch_sizes(max_batch),
        "max": (max_batch,),
        "half": tuple(sorted({max(1, max_batch // 2), max_batch})),
    }[preferred]
    return ServingConfig(max_batch, sizes, delay_us, instances, precision)


def describe(trial: Trial) -> str:
    if trial.error:
        return f"failed ({trial.error})"
    text = f"{trial.throughput_rps:.0f} req/s, p99 {trial.p99_ms:.1f} ms, goodput {trial.goodput_rps:.0f}/s"
    return text + (" (pruned after window 1)" if trial.pruned else "")


@dataclass
class Samples:
    """Exact latencies (ms) and success flags of the requests that ended inside measured windows."""

    latencies_ms: np.ndarray
    ok: np.ndarray
    seconds: float

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            np.concatenate([self.latencies_ms, other.latencies_ms]),
            np.concatenate([self.ok, other.ok]),
            self.seconds + other.seconds,
        )

    def trial(self, config: ServingConfig, slo_ms: float, pruned: bool = False) -> Trial:
        return trial_figures(config, self, slo_ms, pruned)


def trial_figures(config: ServingConfig, samples: Samples, slo_ms: float, pruned: bool = False) -> Trial:
    """Throughput, p50/p99 of successful requests, and goodput (successes within the SLO per second)."""
    from loadtest.percentiles import percentile

    good = samples.latencies_ms[samples.ok]
    span = samples.seconds if samples.seconds > 0 else math.nan
    return Trial(
        config=config,
        throughput_rps=float(good.size / span),
        p50_ms=percentile(good, 50.0),
        p99_ms=percentile(good, 99.0),
        failed_requests=int((~samples.ok).sum()),
        goodput_rps=float((good <= slo_ms).sum() / span),
        pruned=pruned,
        requests=int(samples.ok.size),
        window_s=round(samples.seconds, 3),
    )


def clearly_worse(goodput: float, best: float) -> bool:
    """Prune rule: a first window below PRUNE_FRACTION of the best complete trial's goodput."""
    return best > 0 and goodput < PRUNE_FRACTION * best


class TrialServer:
    """One tritonserver (explicit model control) over a scratch repository; each trial redeploys one model."""

    def __init__(self, settings: TuneSettings, out: Path) -> None:
        from serving.server import ServerOptions, TritonServer

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
        from serving.deploy import ServingPolicy, deploy

        build = self.settings.build_for(config.precision)
        policy = ServingPolicy(keep_versions=1)
        deploy(
            build,
            self.repo,
            SCRATCH_MODEL,
            config.max_batch,
            config.max_queue_delay_us,
            config.preferred,
            config.instances,
            policy=policy,
        )
        self.server.control(timeout_s=120.0).load(SCRATCH_MODEL)

    def run(self, config: ServingConfig, best_goodput: float) -> Trial:
        """Two measured windows, or one when the first is clearly worse than the best so far."""
        self.count += 1
        slo = self.settings.slo_p99_ms
        try:
            self.install(config)
            first = self.window(1)
            if clearly_worse(first.trial(config, slo).goodput_rps, best_goodput):
                return first.trial(config, slo, pruned=True)
            return (first + self.window(2)).trial(config, slo)
        except QuantserveError as exc:
            return Trial(config, 0.0, math.nan, math.nan, 0, 0.0, error=" ".join(str(exc).split())[:300])

    def window(self, index: int) -> Samples:
        folder = self.out / "runs" / f"trial{self.count:02d}-w{index}"
        return measure_window(self.settings, self.server.grpc_url, SCRATCH_MODEL, folder, self.server.pid)


def measure_window(settings: TuneSettings, url: str, model: str, folder: Path, pid: int | None) -> Samples:
    """One Locust closed-loop run of warm-up + window; the requests ending in the warm-up are discarded."""
    from loadtest import recording_files
    from loadtest.harness import LoadSettings, run_step
    from loadtest.load_pattern import ClosedLoop

    step = ClosedLoop(settings.users)
    duration = SPAWN_S + settings.warmup_s + settings.window_s
    load = LoadSettings(url, model, Path(settings.data), step, duration, settings.request_batch)
    run_step(load, step, folder, server_pid=pid)
    record_dir = folder / "raw" / load.step_name(step)
    window = recording_files.read_window(record_dir)
    start = window.start + settings.warmup_s
    rows = recording_files.read_latencies(record_dir, start, window.end)
    if rows.size == 0:
        rows = np.zeros((0, 3))
    return Samples(rows[:, 1], rows[:, 2] > 0.5, max(window.end - start, 0.0))


def deploy_winner(settings: TuneSettings, config: ServingConfig) -> dict[str, Any]:
    """Deploy the winning build with the winning settings into the user's repository."""
    from serving.deploy import deploy

    build = settings.build_for(config.precision)
    deployment = deploy(
        build,
        settings.repo,
        settings.name,
        config.max_batch,
        config.max_queue_delay_us,
        config.preferred or None,
        config.instances,
    )
    return {
        "repo": str(settings.repo),
        "name": settings.name,
        "version": deployment.version,
        "build": str(build),
        "config": {**asdict(config), "preferred": list(config.preferred)},
        "config_path": str(deployment.config_path),
    }


def remeasure(settings: TuneSettings, best: Trial, out: Path) -> dict[str, Any]:
    """One plain closed-loop load (no warm-up discarded) of the deployed winner on a fresh server."""
    from loadtest.harness import run_load
    from serving.server import ServerOptions, TritonServer

    options = ServerOptions.on_free_ports(
        settings.repo, model_control="explicit", load_models=(settings.name,), log_path=out / "tritonserver-check.log"
    )
    duration = SPAWN_S + settings.warmup_s + 2 * settings.window_s
    with TritonServer(options) as server:
        result = run_load(
            server.grpc_url,
            settings.name,
            settings.data,
            settings.users,
            duration,
            out / "remeasure",
            server_pid=server.pid,
            request_batch=settings.request_batch,
        )
    throughput, p99 = result.throughput_rps, result.latency.p99_ms
    return {
        "throughput_rps": throughput,
        "p50_ms": result.latency.p50_ms,
        "p99_ms": p99,
        "failed_requests": result.failed_requests,
        "window_s": result.window_s,
        "throughput_ratio": throughput / best.throughput_rps if best.throughput_rps > 0 else math.nan,
        "p99_ratio": p99 / best.p99_ms if best.p99_ms > 0 else math.nan,
        "how": "a fresh server on the deployed repository, one plain closed-loop load, nothing discarded",
    }
