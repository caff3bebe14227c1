"""What `quantserve tune` says about its outcome, read from tune.json's document: one source for the terminal's summary
(`commands.tune`) and tune.html's headline (`tune_report`), so the page cannot tell less than the terminal.

Probe round 11 found the page saying less: a re-measure ABOVE the SLO shown as "Re-measured …: p99 236.02 ms" with
no verdict, "gain nan×" where the terminal said "none (no baseline goodput)", and the kept baseline credited with
the search pick's figure ("the search saw 608.4/s": the baseline had seen 255.6/s).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from quantserve.cli.tables import fmt

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import Trial


def config_label(config: dict[str, Any]) -> str:
    """A configuration of tune.json in words: "int8 max batch 16, preferred 2,4,8,16, delay 500 µs, ×1"."""
    head = f"{config['precision']} " if config.get("precision") else ""
    if config["max_batch"] == 0:
        return f"{head}no batching ×{config['instances']}"
    pref = ",".join(map(str, config["preferred"]))
    delay = config["max_queue_delay_us"]
    return f"{head}max batch {config['max_batch']}, preferred {pref}, delay {delay} µs, ×{config['instances']}"


def failed_cell(trial: dict[str, Any]) -> str:
    """A trial's "failed" column in the terminal's table and tune.html's: its failed requests, or, for a trial that
    failed whole (no figures: `tune_trials.failed_trial`), what it is."""
    if trial.get("cut_short"):
        return "cut short"
    return "error" if trial.get("error") else str(trial["failed_requests"])


def best_line(document: dict[str, Any]) -> str:
    """The best configuration and its figures (the confirmation's where confirmed), failed requests counted. A
    baseline that missed the SLO is not called best (probe 56: "best: fp32 no batching ×1 (…, p99 83.50 ms)" under a
    50 ms SLO, the baseline kept over a pick that missed it too): the line says it was kept and misses the SLO."""
    best = document["best"]
    failed = f", {best['failed_requests']} of {best['requests']} requests failed" if best["failed_requests"] else ""
    figures = f"{best['goodput_rps']:.1f} good req/s, p99 {best['p99_ms']:.2f} ms{failed}"
    if document.get("slo_met") is False and best["config"] == document["baseline"]["config"]:
        slo = document["settings"].get("slo_p99_ms")
        which = f"the {slo:g} ms p99 SLO" if isinstance(slo, int | float) else "the SLO"
        return f"kept, though it misses {which}: the naive baseline, {config_label(best['config'])} ({figures})"
    if document.get("slo_met") is False and not any(t["goodput_rps"] > 0 for t in document["trials"]):
        # no request within the SLO anywhere: `best_trial` kept the lowest p99, what --allow-slo-miss deploys
        return f"lowest p99, no trial met the SLO: {config_label(best['config'])} ({figures})"
    return f"best: {config_label(best['config'])} ({figures})"


def search_figure(document: dict[str, Any]) -> dict[str, Any] | None:
    """The search's own record of the best's configuration: the search's pick where the pick is kept, the search's
    baseline where the confirmation kept the baseline; None where neither is of that configuration."""
    config = document["best"]["config"]
    return next((seen for seen in _searched(document) if seen["config"] == config), None)


def _searched(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [document[key] for key in ("search_best", "search_baseline") if document.get(key)]


def gain_text(document: dict[str, Any]) -> str:
    """The best's goodput over the baseline's ("1.44x goodput"), or that there is none to divide by."""
    gain = document.get("gain")  # NaN in memory, null in tune.json
    if isinstance(gain, int | float) and math.isfinite(gain):
        return f"{fmt(float(gain))}x goodput"
    return "none (no baseline goodput)"


BASELINE_MOVED = (
    1.5  # the baseline's confirmed goodput this far from its search figure, either way: the gain is doubtful
)


def gain_line(document: dict[str, Any]) -> str:
    doubt = gain_doubt(document)
    return (
        f"gain over the naive baseline: {gain_text(document)} ({how_measured(document)}){'; ' + doubt if doubt else ''}"
    )


def gain_doubt(document: dict[str, Any]) -> str:
    """Where the confirmation measured the baseline far from the search's own figure of the same configuration: the
    machine's load moved between the two runs, and the gain divides by one noisy run ("2.86x goodput (both confirmed
    back to back)" over a baseline confirmed at 432 good req/s that the search had measured at 802; alternated by
    hand, the gain was 1.19×: session 41). Says both baseline figures and the search's own gain; "" otherwise."""
    if not document["search"].get("confirmed"):
        return ""
    now = document["baseline"].get("goodput_rps")
    then = (document.get("search_baseline") or {}).get("goodput_rps")
    if not now or not then or 1.0 / BASELINE_MOVED <= now / then <= BASELINE_MOVED:
        return ""
    best_then = search_figure(document)
    own = f"; the search's own figures give {fmt(best_then['goodput_rps'] / then)}x" if best_then else ""
    return (
        f"uncertain: the baseline measured {then:.1f} good req/s in the search and {now:.1f} when confirmed "
        f"({now / then:.2f}x), the machine's load moved between the runs{own}; tune again on a quieter machine"
    )


def how_measured(document: dict[str, Any]) -> str:
    """Where the best's and the baseline's figures come from: the confirmation run, or the search alone (it stopped
    early, Ctrl-C or SIGTERM cut it or the confirmation, or the confirmation failed)."""
    search = document["search"]
    if search.get("confirmed"):
        return "both confirmed back to back"
    if search.get("stopped"):
        return f"the search's figures: it stopped after {search['trials']} trial(s), nothing was confirmed"
    if document.get("interrupted"):  # a cut trial is no failed one, nor a cut confirmation a failed run
        return f"the search's figures: interrupted during {document.get('interrupted_during')}, nothing was confirmed"
    return "the search's figures: the confirmation run failed"


def pick_lost_line(document: dict[str, Any]) -> str:
    """Where the search's pick lost to the baseline when both were confirmed: the pick's own confirmation figures,
    else "" (the best line shows the baseline's, and before this the pick's were nowhere)."""
    confirmation = document.get("confirmation") or {}
    pick = confirmation.get("pick")
    if confirmation.get("kept") != "baseline" or not pick or pick["config"] == document["baseline"]["config"]:
        return ""
    kept = "kept and deployed" if document["deployed"] else "kept"
    return (
        f"the search's pick, {config_label(pick['config'])}, confirmed at {pick['goodput_rps']:.1f} good req/s, "
        f"p99 {pick['p99_ms']:.2f} ms: it did not beat the baseline measured back to back, so the baseline is {kept}"
    )


def cut_confirmation_line(document: dict[str, Any]) -> str:
    """Where Ctrl-C or SIGTERM cut the confirmation run: its runs as far as they got, the cut one partial, said to be
    no claim; "" where it was not cut."""
    confirmation = document.get("confirmation") or {}
    if not confirmation.get("interrupted"):
        return ""
    runs = [f"{role} {_run_figures(confirmation[role])}" for role in ("baseline", "pick") if role in confirmation]
    return f"the confirmation run as far as it got (not the claim): {'; '.join(runs)}"


def _run_figures(trial: dict[str, Any]) -> str:
    figures = f"{config_label(trial['config'])}: {trial['goodput_rps']:.1f} good req/s, p99 {trial['p99_ms']:.2f} ms"
    return figures + (f" (partial: {trial['window_s']:g} s measured)" if trial.get("interrupted") else "")


def precision_line(document: dict[str, Any]) -> str:
    """Given FP32 and INT8 builds, the precision that won; "none" where no configuration met the SLO and nothing was
    deployed (the SLO 0.05 ms run printed "winning precision: int8"); "" with one build."""
    if len(document["settings"].get("builds") or {}) < 2:
        return ""
    won = document.get("winner_precision")
    return f"winning precision: {won}" if won else "winning precision: none (no configuration met the SLO)"


def remeasure_line(document: dict[str, Any]) -> str:
    """The re-measure's req/s and p99 against the claim, and whether it holds the SLO (`tune_trials.meets_slo`:
    every request served, p99 within it): on a trace the req/s is the trace's own (an open loop serves what it is
    offered), so the p99 and the failures are the check that counts."""
    check, best, slo = document["remeasured"], document["best"], document["settings"]["slo_p99_ms"]
    if check.get("cut_short"):  # its model went away mid-run (`loadtest.model_gone`): its figures check nothing
        return f"re-measure cut short: {check['cut_short']}"
    held = "within" if check["p99_ms"] <= slo else "ABOVE"  # NaN (nothing served) is not within
    failed = check.get("failed_requests") or 0
    if failed:  # its successes' p99 says nothing of the requests that failed
        total = f" of {check['requests']}" if check.get("requests") else ""
        held = f"{failed}{total} requests FAILED" + (" and p99 ABOVE" if held == "ABOVE" else ": not within")
    offered = " (set by the trace)" if document["settings"].get("load") == "open" else ""
    ratio = f" ({fmt(check['throughput_ratio'])}x the claim)"
    if check.get("offered_requests") is not None:  # a trace's: its span's arrivals answered, not a ratio of spans
        answered = (check.get("requests") or 0) - failed
        span = check.get("planned_window_s") or check.get("window_s") or 0
        offered = (
            f" (set by the trace: {answered} of the {check['offered_requests']} arrivals of its {span:g} s answered)"
        )
        ratio = ""
    return (
        f"re-measured: {check['throughput_rps']:.1f} req/s{offered}{ratio}, "
        f"p99 {check['p99_ms']:.1f} ms (claimed {best['p99_ms']:.1f}): {held} the {slo:g} ms SLO"
    )


def remeasure_missed(document: dict[str, Any]) -> str | None:
    """Why the deployed winner's re-measure does not hold the SLO (p99 above it, or requests failed), or None where it
    holds or was not made: a quick search met a 300 ms SLO once, by chance (the confirmation's 281 ms; the search's
    688), deployed, re-measured 451.5 ms "ABOVE the 300 ms SLO", and exited 0 (session 44)."""
    check, slo = document.get("remeasured"), document["settings"]["slo_p99_ms"]
    if not document.get("deployed") or not check or check.get("cut_short"):
        return None
    failed = check.get("failed_requests") or 0
    p99 = check.get("p99_ms")
    if failed:
        return f"its re-measure failed {failed} requests"
    if p99 is not None and not p99 <= slo:  # NaN (nothing served) is not within either
        return f"its re-measure's p99 {p99:.1f} ms is above the {slo:g} ms SLO"
    return None


def deployed_line(document: dict[str, Any]) -> str:
    """Where the winner went, or that nothing was deployed because the SLO was missed."""
    deployed = document["deployed"]
    if not deployed:
        return "nothing deployed (the SLO was missed)"
    return f"deployed: {deployed['repo']}/{deployed['name']}"


def outcome_lines(document: dict[str, Any]) -> list[str]:
    """After the trials: the best, the pick that lost, the gain, the client's share of the latency, an SLO that bound
    no trial, the SLO's outcome or the machine, the send lag, the
    winning precision, the search's size and the re-measure, in the terminal's words and order (`deployed_line`
    follows)."""
    from quantserve.cli.tune_verdict import send_lag_line

    lines = [best_line(document), pick_lost_line(document), gain_line(document)]
    if document.get("outside_server"):  # the client's share of the latency holds the gain down
        lines.append(f"note: {document['outside_server']}")
    if document.get("slo_unbound"):  # goodput is throughput: the SLO chose nothing
        lines.append(f"note: {document['slo_unbound']}")
    if document.get("slo_missed"):
        lines.append(document["slo_missed"])
    elif document.get("shared_machine"):  # met anyway: the figures are still below what an idle machine serves
        lines.append(f"note: {document['shared_machine']}")
    search = document["search"]
    lines += [send_lag_line(document["best"]), precision_line(document)]
    lines.append(f"{search['trials']} trials ({search_counts(search)}) in {search['seconds']:.0f} s")
    if document["remeasured"]:
        lines.append(remeasure_line(document))
    return [line for line in lines if line]


def search_counts(search: dict[str, Any]) -> str:
    """ "2 pruned", and the failed trials where any failed ("2 pruned, 1 failed"): a trial a server death failed
    twice was in no count of the line (`tune_server.server_failed`)."""
    failed = search.get("failed") or 0
    return f"{search['pruned']} pruned" + (f", {failed} failed" if failed else "")


def describe(trial: Trial) -> str:
    """The trial's figures in one clause, and where its server was restarted, that (`TrialServer.run`)."""
    restarts = "".join(f"; {note}" for note in trial.server_restarts)
    return _figures(trial) + restarts


def _figures(trial: Trial) -> str:
    if trial.cut_short:  # its model went away mid-trial: the error names where
        return trial.error
    if trial.error:
        return f"failed ({trial.error})"
    if trial.requests and trial.failed_requests == trial.requests:  # no latency or rate: the refusal is the figure
        return f"every one of its {trial.requests} requests failed"
    text = f"{trial.throughput_rps:.0f} req/s, p99 {trial.p99_ms:.1f} ms, goodput {trial.goodput_rps:.0f}/s"
    if trial.failed_requests:
        text += f", {trial.failed_requests} of {trial.requests} requests failed"
    if trial.interrupted:  # what its windows measured up to the interrupt: kept, never ranked as complete
        return text + f" (interrupted: partial, {trial.window_s:g} s in {len(trial.windows)} window(s))"
    return text + (" (pruned after window 1)" if trial.pruned else "")
