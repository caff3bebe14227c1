"""`quantserve tune` stopped by Ctrl-C or SIGTERM: tune.json written with what was measured, and one line saying
what the user's repository now holds.

A SIGTERM after the winner's deploy (during its re-measure) exited 130 with only "quantserve: interrupted": the
repository already held the new version, live under a running `serve`, and neither tune.json nor any line said so;
one mid-search lost every trial measured. So `tune` keeps its progress here as it goes (the trials as each is
measured, the stage, the result once the confirmation settled it), and on the interrupt writes tune.json and
tune.html from it, marked interrupted, then raises `TuneInterrupted` (a KeyboardInterrupt, so every caller that
does not look for it stops as on any Ctrl-C) with the line.

A cut inside a trial dropped the trial whole: one in its second window lost its first, measured and complete, from
tune.json. The trial server now raises `TrialInterrupted` with the trial made of the windows measured up to the
interrupt (the one in progress up to it: `cut_trial`), marked `interrupted`, and the search's trials keep it.
A cut in the confirmation run dropped its runs the same way (the baseline's, complete, with the pick's it cut): they
are kept in tune.json's `confirmation`, the cut one partial, never in place of the search's figures.

A stop after a trial's last window reached its planned end (Locust shutting down: `Window.ran_to_plan`) cut nothing,
yet the trial was marked partial and never ranked: a Ctrl-C just after a trial ended lost its ranking. Such a trial is
raised whole (`TrialInterrupted.whole`), kept unmarked, ranked and given its SLO verdict as any finished trial, and the
line names it; the stop still ends tune (exit 130). A stop after the confirmation's last run ended that way leaves the
whole confirmation: it is settled as a finished one (`tune_confirm`), nothing is deployed, and the line names the
confirmed winner and the command that deploys it.
"""

from __future__ import annotations

import functools
import math
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantserve.cli.tune_result import TuneResult
    from quantserve.cli.tune_trials import Samples, ServingConfig, Trial, TuneSettings


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during tune, after tune.json was written: `result` is what it holds, `line` what to say."""

    def __init__(self, line: str, result: TuneResult) -> None:
        super().__init__(line)
        self.line, self.result = line, result


class TrialInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM inside a trial: `trial` holds what its windows measured up to then (None: no request
    ended in them), for the search's trials to keep; `before`, the runs of the confirmation measured whole before it.
    `whole`: the stop came after the trial's last window ran to plan; `trial` is the finished one, unmarked."""

    def __init__(self, trial: Trial | None, before: Sequence[Trial] = (), whole: bool = False) -> None:
        super().__init__("interrupted")
        self.trial, self.before, self.whole = trial, list(before), whole


def cut_trial(config: ServingConfig, slo_ms: float, windows: Sequence[Samples | None]) -> Trial | None:
    """The trial as its windows measured it before the interrupt (the window in progress up to it; None where
    nothing was recorded there), marked interrupted; None where no request ended in any of them. Its figures are
    per second of what was measured, as a complete trial's are."""
    measured = [w for w in windows if w is not None and w.ok.size]
    if not measured:
        return None
    return replace(functools.reduce(operator.add, measured).trial(config, slo_ms), interrupted=True)


@dataclass
class TuneProgress:
    """How far `tune` got: the trials measured so far (the search appends each), the stage it is in, and the result
    once the confirmation settled best and baseline (its `deployed` filled by the deploy)."""

    settings: TuneSettings
    started: float
    stage: str = "the search"
    trials: list[Trial] = field(default_factory=list)
    result: TuneResult | None = None


def interrupted(
    progress: TuneProgress, stop: BaseException | None = None, say: Callable[[str], None] | None = None
) -> TuneInterrupted:
    """Write tune.json and tune.html with what `progress` holds, marked interrupted; the exception to raise. A search
    trial the interrupt cut (`stop`, a `TrialInterrupted`) joins the trials with what it measured; a confirmation
    whose runs had all ended whole before the stop is settled as a finished one (`tune_confirm`, said through `say`)
    and deploys nothing."""
    from quantserve.cli.tune_report import write_report

    cut = stop.trial if isinstance(stop, TrialInterrupted) else None
    if cut is not None and progress.result is None and progress.stage == "the search":
        progress.trials.append(cut)
    result = progress.result or partial_result(progress)
    if isinstance(stop, TrialInterrupted) and progress.stage == "the confirmation run":
        runs = [*stop.before, *([cut] if cut is not None else [])]
        if not _settled(result, runs, say or (lambda line: None)):
            result.cut_confirmation = runs
    result.interrupted = progress.stage
    result.seconds = time.monotonic() - progress.started
    json_path, _ = write_report(result, progress.settings.out)
    line = interrupt_line(result, progress.settings, progress.stage, str(json_path))
    return TuneInterrupted(line + kept_whole(progress, stop, result.confirmed), result)


def _settled(result: TuneResult, runs: list[Trial], say: Callable[[str], None]) -> bool:
    """Settle `result` from the confirmation's `runs` where they are whole (`tune_confirm.whole_confirmation`): the
    claim is theirs, as an uninterrupted confirmation's would be. False (nothing changed) where the stop cut one."""
    from quantserve.cli.tune_confirm import settle_confirmation, whole_confirmation

    search_baseline, search_best = result.search_baseline or result.baseline, result.search_best or result.best
    if not whole_confirmation(runs, search_baseline.config, search_best.config):
        return False
    result.baseline, result.best = runs[0], runs[-1]
    settle_confirmation(result, say)
    return result.confirmed


def kept_whole(progress: TuneProgress, stop: BaseException | None, confirmed: bool = False) -> str:
    """The line's clause for a trial whose last window had ended when the stop came (`TrialInterrupted.whole`): which
    one, kept whole; "" where the stop cut a trial or came between them. `confirmed`: that run completed the
    confirmation, whose claim `interrupt_line` says instead: "" too."""
    if not isinstance(stop, TrialInterrupted) or not stop.whole or stop.trial is None or confirmed:
        return ""
    from quantserve.cli.tune_lines import describe

    trial = stop.trial
    if progress.stage == "the search" and progress.result is None:
        which, kept = f"trial {len(progress.trials)} ({trial.config.label()})", "kept whole and ranked"
    else:
        which, kept = f"the confirmation's run of {trial.config.label()}", "kept whole"
    return f"; {which} had ended before the stop: {kept} ({describe(trial)})"


def partial_result(progress: TuneProgress) -> TuneResult:
    """The search's trials so far, its best and baseline as it saw them (nothing confirmed); a placeholder baseline
    marked unmeasured where the interrupt came before the first trial ended."""
    from quantserve.cli.tune_result import TuneResult
    from quantserve.cli.tune_trials import Trial, best_trial
    from serving.machine import cpu_facts

    settings, trials = progress.settings, list(progress.trials)
    base = settings.baseline()
    unmeasured = Trial(base, 0.0, math.nan, math.nan, 0, 0.0, error="not measured: interrupted before its trial ended")
    first = next((t for t in trials if t.config == base), unmeasured)
    best = best_trial(trials, traced=settings.trace is not None, slo_ms=settings.slo_p99_ms) if trials else first
    result = TuneResult(trials, best, first, 0.0, settings, search_best=best, search_baseline=first)
    result.machine = cpu_facts().to_dict()
    return result


def interrupt_line(result: TuneResult, settings: TuneSettings, stage: str, report: str) -> str:
    """What the repository holds after the interrupt, and where the trials measured are."""
    confirmation = (
        " and the confirmation run as far as it got (partial: not the claim)" if result.cut_confirmation else ""
    )
    saved = f"the {len(result.trials)} trial(s) measured{confirmation} are in {report}"
    deployed = result.deployed
    if deployed:
        label = result.best.config.label()
        checked = "" if result.remeasured else ", not re-measured"
        return (
            f"interrupted during {stage}: {settings.name} v{deployed['version']} ({label}) is deployed in "
            f"{settings.repo} (a running serve loads it){checked}; {saved}"
        )
    if stage == "the deploy":  # deploys are atomic: the version folder is complete or absent
        return (
            f"interrupted during the deploy of {result.best.config.label()} into {settings.repo} as {settings.name}: "
            f"its new version is there complete or not at all (deploys are atomic); {saved}"
        )
    if result.confirmed and stage == "the confirmation run":  # every run of it had ended: its claim, not deployed
        from quantserve.cli.tune_confirm import deploy_command
        from quantserve.cli.tune_lines import describe

        best, verdict = result.best, "meets" if result.slo_met else "misses"
        gain = f", {result.gain:.2f}x the baseline's goodput" if math.isfinite(result.gain) else ""
        return (
            f"interrupted after the confirmation run's last run had ended, before the deploy: nothing was deployed "
            f"({settings.repo} is as it was); confirmed back to back: best {best.config.label()} ({describe(best)}"
            f"{gain}; it {verdict} the {settings.slo_p99_ms:g} ms SLO); to deploy it: "
            f"{deploy_command(settings, best.config)}; {saved}"
        )
    return f"interrupted during {stage}: nothing was deployed ({settings.repo} is as it was); {saved}"
