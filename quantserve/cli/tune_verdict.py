"""What `quantserve tune` says about its SLO, the machine and the client: lines from the measured trials.

Three things the outcome line once got wrong (probe round 2): "no configuration met the SLO" where two search trials
had (p99 70.0 and 73.6 ms under 100 ms with a bursty trace) and only the confirmation of the pick missed (185.5 ms);
the advice "a faster build, more cores or a looser SLO" on a machine where other processes took 40 % of the cores
(alone, the same tune met its SLO at 36 ms); and the send-lag note blaming the in-flight cap with under 100 of 512
slots in use. Each trial records the worst share of the cores other processes took in its windows, and the
client's own lags (`tune_trials.Trial`); these lines read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loadtest.client_lags import ClientLags, ClientWindow
from loadtest.results import LATE_SEND_MS
from loadtest.send_lag import SendLagCause, send_lag_cause, window_cause
from quantserve.cli.tune_trials import met_slo  # the one rule, beside the Trial it reads

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import Trial, TuneSettings

FASTER = "a faster build, more cores or a looser SLO would be needed"


class TuneResult(Protocol):
    """What these lines read of `tune_result.TuneResult` (which imports this module: no import back)."""

    trials: list[Trial]
    best: Trial
    baseline: Trial
    confirmed_pick: Trial | None
    search_best: Trial | None
    settings: TuneSettings | None
    stopped: str
    load_bound: str
    interrupted: str

    @property
    def gain(self) -> float: ...


def others_share(trials: Sequence[Trial]) -> float | None:
    """The most of the cores other processes took in any trial's window (None: never read)."""
    shares = [t.others_share for t in trials if t.others_share is not None]
    return max(shares) if shares else None


def shared_line(share: float | None, confirmation: float | None = None) -> str:
    """Where other processes took over the busy mark (`optimizer.cpu_clock.BUSY_SHARE`) of the cores in the trials
    (`share`) or the confirmation run (`confirmation`): said, each its own figure (probe 56: the confirmation's 52 %
    was said to be the trials', which reached 49 %); else ""."""
    from optimizer.cpu_clock import BUSY_SHARE

    known = [s for s in (share, confirmation) if s is not None]
    if not known or max(known) <= BUSY_SHARE:
        return ""
    where = f"{share:.0%} of the cores during the trials" if share is not None else ""
    if confirmation is not None and (share is None or round(100 * confirmation) > round(100 * share)):
        where += " and " if where else ""
        where += f"{confirmation:.0%}{'' if share is not None else ' of the cores'} during the confirmation run"
    return f"other processes took {where}: tune again on an idle machine"


def machine_line(result: TuneResult) -> str:
    """`shared_line` of the search's trials and of the confirmation run's (the runs measured after them)."""
    later = [t for t in measured(result) if all(t is not s for s in result.trials)]
    return shared_line(others_share(result.trials), others_share(later))


def outside_line(result: TuneResult) -> str:
    """Where OUTSIDE_SHARE or more of the naive baseline's or the best's mean latency was spent outside Triton
    (`Trial.outside_share`: the load generator on this machine's cores): both rates are held down by the client, the
    baseline's, slower to serve, less, so the gain understates the server's (probe 56: tune claimed 1.12x, a lighter
    client measured 1.42-1.45x on the same server, and `loadtest` said 66 % of the baseline's latency was the
    client's). One line, no "note: " (`tune_lines.outcome_lines` adds it); "" where neither share is high or known."""
    from loadtest.results import OUTSIDE_SHARE
    from quantserve.cli.tables import fmt

    base = result.baseline
    rival, whose = result.best, "the best's"
    if rival.config == base.config and result.confirmed_pick is not None:  # the pick lost to the baseline
        rival, whose = result.confirmed_pick, "the search's pick's"
    shares = [(t.outside_share, who) for t, who in ((base, "the naive baseline's"), (rival, whose))]
    if rival.config == base.config:
        shares = shares[:1]
    known = [(share, who) for share, who in shares if share is not None]
    if not any(share >= OUTSIDE_SHARE for share, _ in known):
        return ""
    (share, who), *more = known
    head = f"{share:.0%} of {who} latency" + "".join(f" (and {s:.0%} of {w})" for s, w in more)
    if rival is result.best and rival.config != base.config and math.isfinite(result.gain):
        claim = f"the gain {fmt(result.gain)}x is a lower bound of the server's"
    elif rival.config != base.config:
        claim = "the pick's loss to the baseline measured back to back may be the client's, not the server's"
    else:
        claim = "these figures measure the client too"
    return (
        f"{head} was spent outside Triton (the load generator on this machine's cores, serialization, transfer): "
        f"{claim}; `quantserve loadtest --workers N` on the deployed model, or a load from another machine, "
        "measures the server's own"
    )


# the SLO is said to have bound no trial only where every run's p99 is at most this share of it. "Met" alone is not
# enough: a p99 of one tune's windows moved up to 1.5x between the search and the confirmation on a shared machine
# (`tune_lines.BASELINE_MOVED`, session 41), so a worst p99 near the SLO could have it bind on the next run; at half
# of it, the slowest run would have to slow down 2x, past that drift, before the SLO chose anything
SLO_UNBOUND_SHARE = 0.5


def slo_unbound_line(result: TuneResult) -> str:
    """Where the SLO chose nothing: every run measured (the search's trials, the naive baseline first, and the
    confirmation's) served every request within it, the worst p99 at most SLO_UNBOUND_SHARE of it. Goodput is then
    throughput, and the winner the fastest rather than the one that met the SLO: said with the worst p99, lest the
    gain "in goodput" read as the SLO's doing. One line, no "note: " (`tune_lines.outcome_lines` adds it); "" where
    the SLO bound any run, or none served."""
    if result.settings is None:
        return ""
    slo = result.settings.slo_p99_ms
    runs = [t for t in measured(result) if not t.error and not t.cut_short and t.requests]
    if not runs or any(t.failed_requests or t.goodput_rps < t.throughput_rps for t in runs):
        return ""
    worst = max(t.p99_ms for t in runs)
    if not worst <= SLO_UNBOUND_SHARE * slo:  # NaN (a run with no latency) is not under it
        return ""
    return (
        f"the SLO bound no trial (worst p99 {worst:.2f} ms against the {slo:g} ms SLO), so goodput = throughput here; "
        "a tighter SLO would choose among them"
    )


def measured(result: TuneResult) -> list[Trial]:
    """Every measurement: the search's trials and the confirmation's runs."""
    extra = [t for t in (result.best, result.baseline, result.confirmed_pick) if t is not None]
    return [*result.trials, *(t for t in extra if all(t is not s for s in result.trials))]


def slo_missed(result: TuneResult, advice: bool = False) -> str:
    """One line: why nothing met the SLO, or, where some search trial met it and its confirmation did not, that.
    `advice`: where no cause was found (the load's own bound, a shared machine), end on what else would help."""
    best, slo = result.best, result.settings.slo_p99_ms if result.settings else math.nan
    if result.interrupted and not result.trials:  # `best` stands in for the trial the interrupt cut: none failed
        return f"no configuration was measured: interrupted during {result.interrupted}, before its first trial ended"
    if best.error:
        return f"no configuration was measured: the best failed ({best.error})"
    if result.stopped:
        count = len(result.trials)
        kept = "the lowest p99 measured" if best.goodput_rps <= 0 else "the most goodput measured"  # `best_trial`
        return (
            f"no configuration can meet the {slo:g} ms p99 SLO: {result.stopped} (stopped after {count} trial(s)); "
            f"kept: {best.config.label()}, {kept} (p99 {best.p99_ms:.1f} ms)"
        )
    within = best.goodput_rps / best.throughput_rps if best.throughput_rps > 0 else 0.0
    shared = machine_line(result)
    met = met_slo(result.trials, slo)
    if met:
        return unstable_line(met, result, slo) + (f"; {shared}" if shared else "")
    failing = failing_line(measured(result))
    if failing:
        return failing
    reasons = [r for r in (result.load_bound, shared) if r] or ([FASTER] if advice else [])
    return (
        f"no configuration met the {slo:g} ms p99 SLO: the best ({best.config.label()}) has p99 {best.p99_ms:.1f} ms, "
        f"{within:.0%} of its requests within it{failed_clause(best)}" + "".join(f"; {r}" for r in reasons)
    )


def failing_line(runs: Sequence[Trial]) -> str:
    """Where every measured run (not failed, not pruned) failed requests, though not all of them (`tune_failed`
    says that one): the share each failed, the commonest error, and what to do; else ""."""
    from quantserve.cli.tune_failed import LONGEST_ERROR

    served = [t for t in runs if not t.error and not t.pruned and t.requests]
    if not served or not all(t.failed_requests for t in served):
        return ""
    shares = sorted(100 * t.failed_requests / t.requests for t in served)
    span = f"{shares[0]:.1f} %" if f"{shares[0]:.1f}" == f"{shares[-1]:.1f}" else f"{shares[0]:.1f}–{shares[-1]:.1f} %"
    counts: dict[str, int] = {}
    for t in served:
        if t.commonest_failure:
            counts[t.commonest_failure] = counts.get(t.commonest_failure, 0) + t.commonest_failure_count
    message = max(counts, key=lambda m: counts[m]) if counts else "no message recorded"
    text = message if len(message) <= LONGEST_ERROR else message[: LONGEST_ERROR - 1] + "…"
    return (
        f"every configuration failed requests ({span}: '{text}'): a configuration whose requests fail meets no SLO, "
        "and no batching or instance count stops a model's own failures; fix the model and tune again"
    )


def failed_clause(trial: Trial) -> str:
    """Where the trial failed requests, ", and F of its N requests failed"; else ""."""
    return f", and {trial.failed_requests} of its {trial.requests} requests failed" if trial.failed_requests else ""


def unstable_line(met: Sequence[Trial], result: TuneResult, slo: float) -> str:
    """Search trials met the SLO, the confirmation of the pick missed it: the result does not hold under this load.
    Names the pick the search chose, its p99 measured again against the search's, the baseline's where it was
    measured beside it, and the trials that met the SLO but were not measured again (probe 56: the line named the
    kept baseline, which never met the SLO, as the run that missed it, and left out the pick's confirmed 56.8 ms)."""
    pick = result.confirmed_pick or result.best
    base = result.baseline
    shown = ", ".join(f"{t.config.label()} p99 {t.p99_ms:.1f} ms" for t in met[:3])
    more = f" and {len(met) - 3} more" if len(met) > 3 else ""
    name = f"the baseline ({pick.config.label()})" if pick.config == base.config else pick.config.label()
    seen = next((t for t in (result.search_best, *met) if t is not None and t.config == pick.config), None)
    then = f" ({seen.p99_ms:.1f} ms in the search)" if seen is not None and seen is not pick else ""
    within = pick.goodput_rps / pick.throughput_rps if pick.throughput_rps > 0 else 0.0
    beside = (
        f"; the baseline came in at p99 {base.p99_ms:.1f} ms{failed_clause(base)}" if base.config != pick.config else ""
    )
    again = {pick.config, base.config} if result.confirmed_pick is not None else {pick.config}
    others = [t.config.label() for t in met if t.config not in again]
    unconfirmed = ""
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        unconfirmed = f"; {listed} {'was' if len(others) == 1 else 'were'} not measured again"
    return (
        f"{len(met)} configuration(s) met the {slo:g} ms p99 SLO in the search ({shown}{more}), but the "
        f"confirmation run missed it: the search's pick, {name}, came in at p99 {pick.p99_ms:.1f} ms{then}, "
        f"{within:.0%} of its requests within it{failed_clause(pick)}{beside}: the result is not stable under this "
        f"load{unconfirmed}"
    )


def send_lag_line(best: dict[str, Any]) -> str:
    """The note on the best's requests that left the client late, naming which part of the client held them as
    loadtest's note names it for the same run (`recorded_cause`); "" where none was late."""
    p99 = best.get("send_lag_p99_ms")
    cause = recorded_cause(best) if p99 is not None and p99 > LATE_SEND_MS else None
    if cause is None:
        return ""
    return (
        f"note: in the best's windows requests left the client up to {p99:.0f} ms after their recorded "
        f"arrival (p99); that wait is counted in its latencies ({cause.short})"
    )


def recorded_cause(trial: dict[str, Any]) -> SendLagCause | None:
    """Which part of the client held a trial's late requests: loadtest's reading (`loadtest.send_lag.window_cause`)
    of the window whose requests left latest (`Trial.client_windows`: its timeline, outages and unanswered too);
    from the trial's worst-of-windows lags alone where no window was read late or none was kept (a tune.json from
    before session 66), which missed a pool the unanswered filled and slots an outage held."""
    windows = [ClientWindow.from_json(window) for window in trial.get("client_windows") or []]
    read = [(window.lags.p99_ms or 0.0, cause) for window in windows if (cause := window_cause(window, LATE_SEND_MS))]
    if read:
        return max(read, key=lambda pair: pair[0])[1]
    lags = ClientLags(
        trial.get("send_lag_p99_ms"),
        generator_p99_ms=trial.get("generator_lag_p99_ms"),
        peak_in_flight=trial.get("peak_in_flight"),
        max_in_flight=trial.get("max_in_flight"),
        processes=max(1, trial.get("workers") or 0),  # each Locust process holds max_in_flight slots
    )
    return send_lag_cause(lags, LATE_SEND_MS)
