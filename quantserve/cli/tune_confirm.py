"""Which figures `quantserve tune` claims once its confirmation run (the baseline and the search's pick measured again,
back to back) has run: `settle_confirmation`, used by the run that goes on to its deploy and by one that a Ctrl-C or
SIGTERM stopped after both confirmation runs had ended whole (`tune_interrupted`).

A stop after the pick's confirmation run reached its planned end cut nothing, yet tune.json said "the confirmation run
as far as it got (partial: not the claim)" and kept the search's figures as the claim: `whole_confirmation` tells such
a pair, and the interrupted run settles it as any finished confirmation, then deploys nothing (the user stopped it)
and says the command that deploys the confirmed winner (`deploy_command`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantserve.cli.tune_result import TuneResult
    from quantserve.cli.tune_trials import ServingConfig, Trial, TuneSettings


def settle_confirmation(result: TuneResult, say: Callable[[str], None]) -> None:
    """Which figures stand as best and baseline. `result` comes with the confirmation run's pair (or, where the search
    stopped, the search's own): a failed run falls back to the search's figures; a pick that loses to the baseline
    when both are measured again gives way to it, its own confirmation kept in `confirmed_pick` and said."""
    from quantserve.cli.tune_lines import describe
    from quantserve.cli.tune_trials import best_trial

    baseline, pick = result.baseline, result.best
    stopped, traced = result.stopped, result.settings is not None and result.settings.trace is not None
    result.confirmed = not stopped and not (pick.error or baseline.error)
    if not stopped and not result.confirmed:
        say(f"the confirmation run failed ({pick.error or baseline.error}): the search's own figures stand")
    if not result.confirmed:  # fall back to the search's own figures
        result.best, result.baseline = result.search_best or pick, result.search_baseline or baseline
        return
    result.confirmed_pick = pick
    if pick.config == baseline.config:
        say(f"confirmed back to back: baseline {describe(baseline)} (the search's pick is the baseline)")
        return
    picked = f"the search's pick ({pick.config.label()}) {describe(pick)}"
    say(f"confirmed back to back: baseline {describe(baseline)}; {picked}")
    slo = result.settings.slo_p99_ms if result.settings is not None else None
    if best_trial([baseline, pick], traced, slo) is baseline:
        from quantserve.cli.tune_trials import meets_slo

        kept = (
            "kept as best" if slo is None or meets_slo(baseline, slo) else f"kept, though it missed the {slo:g} ms SLO"
        )
        say(f"the search's pick did not beat the baseline when both were measured again: the baseline is {kept}")
        result.best = baseline


def whole_confirmation(runs: Sequence[Trial], baseline: ServingConfig, pick: ServingConfig) -> bool:
    """Whether `runs` (the confirmation's runs as far as a stop let them get) are the whole confirmation: the
    baseline's run, then the pick's where it is another configuration, neither cut (`Trial.interrupted`)."""
    wanted = [baseline] if pick == baseline else [baseline, pick]
    return [run.config for run in runs] == wanted and not any(run.interrupted for run in runs)


def deploy_command(settings: TuneSettings, config: ServingConfig) -> str:
    """The `quantserve deploy` command that deploys `config` as tune's deploy would (`tune_winner.deploy_winner`)."""
    words = ["quantserve", "deploy", str(settings.build_for(config.precision))]
    words += ["--repo", str(settings.repo), "--name", settings.name, "--max-batch", str(config.max_batch)]
    if config.max_batch:
        words += ["--max-queue-delay-us", str(config.max_queue_delay_us)]
        if config.preferred:
            words += ["--preferred-batch", ",".join(map(str, config.preferred))]
    words += ["--instances", str(config.instances)]
    return shlex.join(words)
