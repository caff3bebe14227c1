"""When no configuration can meet the p99 SLO: its model already computes a request in far more than it.

A request is never served faster than its model computes it alone: dynamic batching adds the queue delay and a
larger batch's compute, more instances split the same cores. So once each build (FP32, INT8) has a trial whose
Triton counters were read, an SLO below REACH_FACTOR of the least compute time per request any of them measured is out
of reach, and the search stops there. It had spent every trial, the confirmation and its windows first (`tune
--slo-p99-ms 0.001`: all its trials, then "no configuration met the 0.001 ms p99 SLO"). The factor leaves room for a
quieter moment of a shared machine: the compute time is a window's mean.

The bound is Triton's compute time (input + infer + output), not the fastest request the client saw: under a closed
loop that holds the queueing too (session 64: `--request-batch 100 --slo-p99-ms 100` stopped on a fastest request of
736.53 ms while the model computes one in 49-53 ms, and a later batching trial's fastest took 97 ms). Each request
counts the whole execution it ran in, so a batched execution's time is divided among the requests it held: batching
shares the compute, so the share is at most what one request alone takes. Where no trial's counters were read for a
build, the search does not stop; nor where any request was served within the SLO (a trace's smaller requests).

A closed loop sets a second bound: its U users, each with one request in flight and no think time, at a throughput
of X req/s take U / X per request on average (Little's law: the request's latency plus the client's own time). An
SLO below U / X at the most throughput any trial measured is missed by the load itself (`tune --users 256
--slo-p99-ms 100`: 820-1400 req/s, so 183-312 ms a request); fewer users or a looser SLO changes that. Where the
mean latency is well under U / X, the client's own time fills the rest (another run: 834 req/s, 307 ms a request,
a median latency of 68 ms): a load generator at its CPU's limit, which fewer users relieve too. The search
does not stop on it: a configuration with more throughput lowers U / X, and nothing measured bounds what batching
and instances not yet tried reach (one trial served 1.6x the baseline's), so the bound is said at the end instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import Trial, TuneSettings

REACH_FACTOR = 0.5
CLIENT_SHARE = 0.5  # a closed loop's mean latency under half its cycle (U / X): the client took the rest


def out_of_reach(settings: TuneSettings, trials: list[Trial]) -> str:
    """Why no configuration can meet the SLO, once every build has a trial Triton's compute time was read for; ""
    while one still might."""
    measured = [t for t in trials if not t.error and t.requests and not math.isnan(t.fastest_ms)]
    computed = [(n, t) for n, t in enumerate(trials, 1) if t in measured and solo_ms(t) is not None]
    if {t.config.precision for _, t in computed} != set(settings.labels()):
        return ""  # a build without a compute figure may be the faster one
    number, least = min(computed, key=lambda pair: solo_ms(pair[1]) or 0.0)
    solo, fastest, slo = solo_ms(least) or 0.0, min(t.fastest_ms for t in measured), settings.slo_p99_ms
    if slo >= REACH_FACTOR * solo or slo >= fastest:
        return ""
    return (
        f"its model computes {request_words(settings)} in {solo:.2f} ms in Triton, {times(solo / slo)} the {slo:g} ms "
        f"SLO ({compute_source(least)}: trial {number}, {least.config.label()}{busy_words(least)}), and no "
        f"configuration serves a request faster than its model computes it; the fastest of "
        f"{sum(t.requests for t in measured)} requests took {fastest:.2f} ms"
    )


def request_words(settings: TuneSettings) -> str:
    """The request the compute time is of: its rows where every request holds --request-batch of them (the setting
    that shortens it: probe 64D's stop on "a request in 69.38 ms" was a 100-row one); a trace's vary."""
    return "a request" if settings.trace is not None else f"a {settings.request_batch}-row request (--request-batch)"


def busy_words(trial: Trial) -> str:
    """Where other processes took over the busy mark of the cores in `trial`'s windows, said: its compute time was
    taken on a busy machine (probe 64D: 69.38 ms with 73 % of the cores taken, 39.2 ms in a quieter run); else ""."""
    from optimizer.cpu_clock import BUSY_SHARE

    share = trial.others_share
    return f", while other processes took {share:.0%} of the cores" if share is not None and share > BUSY_SHARE else ""


def solo_ms(trial: Trial) -> float | None:
    """Triton's compute time per request of `trial`: its executions' time shared among the requests each held."""
    if trial.compute_ms is None or not trial.requests_per_execution:
        return None
    return trial.compute_ms / trial.requests_per_execution


def compute_source(trial: Trial) -> str:
    """Where `solo_ms` comes from, in words."""
    shared = f"{trial.requests_per_execution or 1.0:.1f}"
    if shared == "1.0":
        return "Triton's compute time per execution"
    compute = f"{trial.compute_ms or 0.0:.2f} ms"
    return f"Triton's compute time per execution, {compute}, shared by its {shared} requests on average"


def times(ratio: float) -> str:
    """How many times the SLO a latency is, as read: `2.5x`, `312x` (a 15.62 ms request missing a 0.05 ms SLO was
    "over 2x the SLO", session 55)."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def load_bound(settings: TuneSettings, trials: list[Trial]) -> str:
    """Why a closed loop's own users keep the SLO out of reach at the measured throughput (Little's law); "" where
    the load is a trace, U / (the most throughput any of `trials` measured) is within the SLO, or the SLO is out of
    reach of a single request (`out_of_reach`: fewer users would not help)."""
    served = [t for t in trials if not t.error and t.throughput_rps > 0]
    if settings.trace is not None or not served or out_of_reach(settings, trials):
        return ""
    most = max(served, key=lambda t: t.throughput_rps)
    cycle_ms = 1000.0 * settings.users / most.throughput_rps
    if settings.slo_p99_ms >= cycle_ms:
        return ""
    # the cycle is the latency plus the client's own time between requests: a saturated load generator's share
    client = (
        f" ({most.mean_ms:.0f} ms of it latency, the rest the load generator's own time: its CPU limits the load too)"
        if most.mean_ms < CLIENT_SHARE * cycle_ms
        else ""
    )
    return (
        f"by Little's law {settings.users} closed-loop users at {most.throughput_rps:.0f} req/s (the most any trial "
        f"served) take {cycle_ms:.0f} ms a request on average{client}, over the {settings.slo_p99_ms:g} ms SLO: "
        "fewer --users (or an open-loop --trace) or a looser SLO would be needed"
    )
