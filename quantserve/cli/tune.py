"""`quantserve tune`: the serving configuration with the most goodput under a p99 SLO, found on a live server.

A seeded TPE search (optuna) over max batch size, preferred batch sizes, max queue delay, instance
count and, given FP32 and INT8 builds, precision. One tritonserver in explicit model-control mode
hosts every trial (each trial is a fresh deploy of the candidate into a scratch repository and
one model load: no server restarts). Each trial is measured by the project's own Locust harness at
a fixed closed-loop concurrency, or, with `--trace`, replaying recorded arrivals open loop (every trial
offered the same traffic: goodputs within 1 % tie and the lower p99 wins), in two windows; after the
first window a trial clearly below the best so far is pruned (`tune_prune`: on goodput, or on
throughput while the best serves under half its requests within the SLO). The naive baseline (no
dynamic batching, one instance) is the search's first trial. The winner is deployed into the user's
repository (where it meets the SLO, or with --allow-slo-miss) and re-measured there by one plain load
of the same kind, so the claim is checked by a server that did not search.

Goodput = requests that succeeded with latency <= the SLO, per second of measured window, from
the exact per-request latencies the harness records (not Locust's rounded histogram).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantserve.cli.tune_checks import check_settings
from quantserve.cli.tune_confirm import settle_confirmation
from quantserve.cli.tune_lines import describe
from quantserve.cli.tune_prune import PRUNE_FRACTION
from quantserve.cli.tune_result import TuneResult
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import (
    QUICK_TRIALS,
    QUICK_WARMUP_S,
    QUICK_WINDOW_S,
    SEED,
    WARMUP_S,
    WINDOW_S,
    ServingConfig,
    Trial,
    TuneSettings,
)
from quantserve.cli.tune_verdict import slo_missed

__all__ = [
    "PRUNE_FRACTION",
    "QUICK_TRIALS",
    "QUICK_WARMUP_S",
    "QUICK_WINDOW_S",
    "SEED",
    "WARMUP_S",
    "WINDOW_S",
    "ServingConfig",
    "Trial",
    "TrialServer",
    "TuneResult",
    "TuneSettings",
    "slo_missed",
    "tune",
]

if TYPE_CHECKING:
    from quantserve.cli.tune_interrupted import TuneProgress

STARTUP_TRIALS = 4  # baseline, the deploy defaults per precision, then random until TPE has this many
# in requests: Triton's max batch is in rows, so a choice is multiplied by the rows each request carries
# (a max batch of 8 rows refuses every 16-row request: the demo's search lost two trials that way)
MAX_BATCH_CHOICES = (0, 2, 4, 8, 16, 32)
DELAY_CHOICES_US = (0, 100, 500, 1000, 2000, 4000)
PREFERRED_CHOICES = ("powers", "max", "half")


def tune(
    settings: TuneSettings,
    say: Callable[[str], None] = print,
    on_trial: Callable[[Trial, int, int], None] | None = None,
) -> TuneResult:
    """Start its own tritonserver(s) on free loopback ports, search, deploy the winner into
    settings.repo as settings.name, write settings.out/tune.json and tune.html, stop every server. Where no trial
    served a request, raise `TuneFailed` after writing tune.json, with nothing confirmed or deployed (`tune_failed`).
    Ctrl-C or SIGTERM writes tune.json with what was measured and deployed so far, then raises `TuneInterrupted`
    naming what the repository holds (`tune_interrupted`); a full disk writes what fits of it and raises `TuneFailed`
    (`tune_disk`)."""
    from quantserve.cli.tune_interrupted import TuneProgress, interrupted

    check_settings(settings)
    progress = TuneProgress(settings, time.monotonic())
    try:
        return _tune(settings, say, on_trial, progress)
    except KeyboardInterrupt as stop:
        raise interrupted(progress, stop, say) from None
    except OSError as exc:  # a full disk: the trials measured are saved, as an interrupt saves them (`tune_disk`)
        from quantserve.cli.tune_disk import disk_full, is_full

        if not is_full(exc):
            raise
        raise disk_full(progress, exc) from None


def _tune(
    settings: TuneSettings,
    say: Callable[[str], None],
    on_trial: Callable[[Trial, int, int], None] | None,
    progress: TuneProgress,
) -> TuneResult:
    from quantserve.cli.tune_failed import TuneFailed, failure_line
    from quantserve.cli.tune_reach import load_bound
    from quantserve.cli.tune_report import write_report
    from quantserve.cli.tune_trace import pass_note
    from quantserve.cli.tune_trials import best_trial
    from quantserve.cli.tune_winner import changed_meanwhile, deploy_winner, remeasure, served_versions
    from serving.machine import cpu_facts

    started, out = progress.started, Path(settings.out)
    versions_before = served_versions(Path(settings.repo), settings.name)
    shutil.rmtree(out / "runs", ignore_errors=True)
    if pass_note(settings):
        say(f"note: {pass_note(settings)}")
    with TrialServer(settings, out) as bench:
        trials, stopped = search(settings, bench, say, on_trial, progress.trials)
        progress.trials = trials
        chosen = best_trial(trials, traced=settings.trace is not None, slo_ms=settings.slo_p99_ms)
        first = next(t for t in trials if t.config == settings.baseline())
        failure = failure_line(trials)
        if failure:  # nothing served: no confirmation, no deploy, no SLO verdict (`tune_failed`)
            result = TuneResult(trials, first, first, time.monotonic() - started, settings, failure=failure)
            result.machine = cpu_facts().to_dict()
            write_report(result, out)
            raise TuneFailed(f"tune: {failure}", result)
        progress.stage = "the confirmation run"
        # out of reach: nothing to confirm, every configuration misses the SLO
        baseline, pick = (first, chosen) if stopped else bench.confirm(first.config, chosen.config)
    result = TuneResult(trials, pick, baseline, 0.0, settings, search_best=chosen, search_baseline=first)
    result.stopped = stopped
    settle_confirmation(result, say)
    result.load_bound = load_bound(settings, [*trials, result.baseline, result.best])
    result.machine = cpu_facts().to_dict()
    progress.result = result
    if result.slo_met or settings.allow_slo_miss:
        progress.stage = "the deploy"
        meanwhile = changed_meanwhile(Path(settings.repo), settings.name, versions_before)
        if meanwhile:
            say(f"note: {meanwhile}")
        result.deployed = deploy_winner(settings, result.best.config)
        best = result.best.config
        say(f"deployed {best.label()} into {settings.repo} as {settings.name} v{result.deployed['version']}")
        if result.deployed["batch_cut"]:
            say(f"note: the winner lowers the model's {result.deployed['batch_cut']}")
        progress.stage = "the re-measure"
        result.remeasured = remeasure(settings, result.best, out)
    # else a configuration that misses the SLO is not what was asked for: the repository is left as it was, and
    # the caller says why once (`slo_missed`: the command's error line, the demo's tune section)
    result.seconds = time.monotonic() - started
    write_report(result, out)
    return result


def search(
    settings: TuneSettings,
    bench: TrialServer,
    say: Callable[[str], None],
    on_trial: Callable[[Trial, int, int], None] | None,
    trials: list[Trial] | None = None,
) -> tuple[list[Trial], str]:
    """The baseline first, then TPE-suggested configurations until `search_trials` distinct ones were measured, or
    until the SLO is out of reach of every build (`tune_reach`): the trials, and why it stopped early ("" if not).
    Each trial joins `trials` as it is measured: an interrupted search leaves the caller what it measured."""
    import optuna

    from quantserve.cli.tune_failed import refused_everything
    from quantserve.cli.tune_reach import out_of_reach

    # ERROR: optuna logs every failed trial at WARNING with its traceback, Ctrl-C included ("Trial 1 failed …
    # KeyboardInterrupt"); a failed trial is already one line of ours
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    total = settings.search_trials + 1
    trials = [] if trials is None else trials
    seen: dict[ServingConfig, Trial] = {}
    suggested: set[ServingConfig] = set()  # every distinct configuration TPE suggested, measured or not
    stopped: list[str] = []
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=STARTUP_TRIALS)
    )
    for params in starting_points(settings):
        study.enqueue_trial(params)

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, settings)
        suggested.add(config)
        if config in seen:  # a repeat suggestion costs nothing: the measurement stands
            return seen[config].goodput_rps
        measured = bench.run(config, trials)  # pruned against the best so far (`tune_prune`)
        if not measured.cut_short:  # a cut trial measured nothing: suggested again, it is measured again
            seen[config] = measured
        trials.append(measured)
        say(f"trial {len(trials)}/{total}: {config.label()}: {describe(measured)}")
        if on_trial is not None:
            on_trial(measured, len(trials), total)
        reach = out_of_reach(settings, trials)
        if refused_everything(trials):  # the model refuses the data: no configuration changes that (`tune_failed`)
            say("stopping the search: every request failed and no trial served one")
            stopped.append("every request failed")
        elif reach:
            say(f"stopping the search: no configuration can meet the {settings.slo_p99_ms:g} ms p99 SLO: {reach}")
            stopped.append(reach)
        if measured.pruned:
            trial.report(measured.goodput_rps, step=1)
            raise optuna.TrialPruned()
        # a cut trial's value is none: NaN fails the study's trial, which TPE learns nothing from
        return math.nan if measured.cut_short else measured.goodput_rps

    def stop_when_done(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if len(trials) >= total or stopped:
            study.stop()

    study.optimize(objective, n_trials=total * 4, callbacks=[stop_when_done])
    if len(trials) < total and not stopped:  # "trial 1/7" was said, and 4 ran with no word why
        say(few_configurations(settings, len(trials), total, len(suggested), total * 4))
    return trials, "".join(stopped[:1])


def few_configurations(settings: TuneSettings, ran: int, planned: int, distinct: int, suggestions: int) -> str:
    """Why a search ran fewer trials than it announced: its suggestions repeated configurations already measured.
    A closed loop of few users bounds the max batch worth a trial (`max_batch_choices`), so the space is small."""
    why, largest = "", max_batch_choices(settings)[-1]
    if settings.trace is None and largest < MAX_BATCH_CHOICES[-1]:
        many = settings.users != 1
        users = f"{settings.users} user{'s never queue' if many else ' never queues'}"
        why = f" ({users} more than {settings.users} request{'s' if many else ''}: "
        why += "no dynamic batching is worth a trial)" if not largest else f"max batches up to {largest} are tried)"
    return (
        f"the search ran {ran} of the {planned} trials planned: its {suggestions} suggestions held {distinct} "
        f"distinct configurations, each measured once; the space is that small{why}"
    )


def max_batch_choices(settings: TuneSettings) -> tuple[int, ...]:
    """The max batch sizes (in requests) worth a trial. A closed loop of `users` never queues more than `users`
    requests, so a max batch above the next power of two of it waits for requests that never come and batches
    as that one does: searching it only spends trials (a trace's bursts can queue any number)."""
    if settings.trace is not None:
        return MAX_BATCH_CHOICES
    fills = 1 << max(0, settings.users - 1).bit_length()  # the next power of two >= users
    return tuple(choice for choice in MAX_BATCH_CHOICES if choice <= fills)


def starting_points(settings: TuneSettings) -> list[dict[str, Any]]:
    """The baseline, then the deploy defaults (max batch 16, powers of two, 500 µs) for each precision, at most
    the largest max batch the load fills."""
    base = settings.baseline()
    points = [_params(base.precision, 0, "powers", 0, 1, settings)]
    default = min(16, max_batch_choices(settings)[-1])
    for label in sorted(settings.labels(), key=lambda x: x != "int8"):
        points.append(_params(label, default, "powers", 500, 1, settings))
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
    max_batch = int(trial.suggest_categorical("max_batch", max_batch_choices(settings)))
    preferred = str(trial.suggest_categorical("preferred", PREFERRED_CHOICES))
    delay = int(trial.suggest_categorical("max_queue_delay_us", DELAY_CHOICES_US))
    instances = int(trial.suggest_int("instances", 1, max_instances()))
    return make_config(precision, max_batch, preferred, delay, instances, settings.request_rows)


def make_config(
    precision: str, max_batch: int, preferred: str, delay_us: int, instances: int, request_rows: int = 1
) -> ServingConfig:
    """The deployable configuration: `max_batch` requests of `request_rows` rows each, preferred sizes
    spelled out in rows (multiples of a request); no batching ignores sizes and delay."""
    from serving.model_config import default_preferred_batch_sizes

    if max_batch == 0:
        return ServingConfig(0, (), 0, instances, precision)
    requests = {
        "powers": default_preferred_batch_sizes(max_batch),
        "max": (max_batch,),
        "half": tuple(sorted({max(1, max_batch // 2), max_batch})),
    }[preferred]
    sizes = tuple(size * request_rows for size in requests)
    return ServingConfig(max_batch * request_rows, sizes, delay_us, instances, precision)
