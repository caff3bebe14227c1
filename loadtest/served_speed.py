"""The verdict's INT8-vs-FP32 served speed: which two load steps it is taken from, and what it cannot vouch for.

The ratio is of two closed-loop steps at the highest user count both runs were loaded at, of runs
`loadtest.run_pairing` lets be paired (one source model, data set, client machine, server, request batch, Locust
workers). A step that does not stand for its variant's speed is left out, and a line names it and why: requests
failed beyond FAILED_SHARE_MAX, the server or the served model changed during its window, it was interrupted, or a
Locust worker was lost (its requests are in no count). Measured by a prober: "FAIL · INT8 9.72× FP32 served" from an
FP32 step with 27.5 % of its requests failed, a 17.6 s outage and served versions 1 → 2 within its window. A step that
served nothing stays: it makes the comparison "not comparable", never a ratio. Where no pair is left, the reason is
said (FP32 at 1 user and INT8 at 16 were "load-test an FP32 and an INT8 variant" though both were).
Every INT8 variant that pairs with an FP32 run (each FP32 run where there are several) gets its own ratio: a folder
with mlp_int8 at 1.04× and mlp_int8t at 0.61× of mlp_fp32 was judged "PASS · INT8 1.04×" from the first pair in
file order, and "FAIL · 0.61×" without mlp_int8's file. An INT8 variant that pairs with none is said why.
The ratio carries caveats where other processes took over BUSY_SHARE of the machine's cores during either step (as
optimize's speed gate says it), Triton served other models' requests in either window (an FP32 run recorded beside
an INT8 trace's load on the same server read "PASS · INT8 2.31×" against 1.04× side by side), or most of a step's
latency was spent outside the server (the client's figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.results import NO_TRITON_COUNTERS, LoadResult
from loadtest.run_pairing import pairing_notes, pairing_problem
from loadtest.window_notes import OTHER_LOAD_FLOOR
from optimizer.cpu_clock import BUSY_SHARE

# failed requests up to this share of a step's still let it feed the ratio (the verdict fails on them anyway): its
# throughput counts successes only, so they move its req/s by about their share, as much as two identical 10 s runs
# of one MLP at 4 users differed here (1298.5 and 1324.1 req/s: 2.0 %)
FAILED_SHARE_MAX = 0.02
LOOPS = {"closed": "in closed loop", "open": "in open loop only", "staged": "staged only"}


@dataclass(frozen=True)
class ServedSpeedup:
    """INT8 over FP32 served throughput at one closed-loop concurrency, with what the figures cannot vouch for."""

    fp32_model: str
    int8_model: str
    users: int
    fp32_rps: float
    int8_rps: float
    caveats: tuple[str, ...] = ()  # a busy machine, latency spent outside the server: said on the verdict line

    @property
    def speedup(self) -> float:
        return self.int8_rps / self.fp32_rps if self.fp32_rps > 0 else float("nan")

    @property
    def comparable(self) -> bool:
        """Both variants served something: else the ratio is NaN (FP32 served nothing) or 0, and says nothing."""
        return self.fp32_rps > 0 and self.int8_rps > 0

    def idle_side(self) -> str:
        """`ref_fp32 served nothing at 4 users` (the variants that served nothing), for a ratio that is not one."""
        idle = [m for m, rps in ((self.fp32_model, self.fp32_rps), (self.int8_model, self.int8_rps)) if not rps > 0]
        return f"{' and '.join(idle)} served nothing at {self.users} users"

    def summary(self) -> str:
        """`INT8 mlp_int8 1.04× FP32 mlp_fp32 (650.7 vs 627.5 req/s at 4 users)`, with its caveats: one pair's line
        where the folder held several."""
        figures = f"{self.int8_rps:.1f} vs {self.fp32_rps:.1f} req/s at {self.users} users"
        if not self.comparable:
            line = f"INT8 {self.int8_model} vs FP32 {self.fp32_model} not comparable: {self.idle_side()} ({figures})"
        else:
            line = f"INT8 {self.int8_model} {self.speedup:.2f}× FP32 {self.fp32_model} ({figures})"
        return line + (f", caveat: {'; '.join(self.caveats)}" if self.caveats else "")


def lowest(pairs: list[ServedSpeedup]) -> ServedSpeedup | None:
    """The pair the headline gives: one that is not comparable, else the lowest ratio (None: no pair)."""
    return min(pairs, key=lambda s: (s.comparable, s.speedup if s.comparable else 0.0), default=None)


def served_speedups(
    runs: list[LoadRun], reference: str | None, precision: Callable[[str], str | None]
) -> tuple[list[ServedSpeedup], list[str]]:
    """INT8 vs FP32 throughput of every FP32 and INT8 run that pair (FP32: the runs served as FP32, and the evaluated
    reference where there is one), with the notes on what the pairs' records could not confirm and the steps left out,
    and why each INT8 variant that pairs with no FP32 run does not (first the pairs of closed-loop runs): without any
    pair, the reasons alone. The reference adds a partner, never takes one away: with accuracy.json of another model
    (img against img) beside mlp_fp32 and mlp_int8, mlp_int8 was paired with img alone ("load-tested on different
    data", no verdict) and with mlp_fp32 only once accuracy.json was removed."""
    # the reference is FP32's side unless it is served as INT8 beside a run served as FP32: with `--reference
    # cls_int8` both runs were taken as FP32, none as INT8, and the verdict read "served INT8 vs FP32 not measured
    # (load-test both variants …)" although both were (session 40)
    int8_reference = precision(reference or "") == "int8" and any(precision(run.model) == "fp32" for run in runs)
    fp32 = [run for run in runs if (run.model == reference and not int8_reference) or precision(run.model) == "fp32"]
    fp32_models = {run.model for run in fp32}
    int8 = [run for run in runs if precision(run.model) == "int8" and run.model not in fp32_models]
    pairs = sorted(((f, i) for f in fp32 for i in int8), key=lambda pair: not (_closed(pair[0]) and _closed(pair[1])))
    served: list[ServedSpeedup] = []
    notes: list[str] = []
    problems: list[tuple[str, str]] = []  # (INT8 model, why a pair of it is none)
    for f, i in pairs:
        problem = pairing_problem(f, i) or _mode_problem(f, i)
        if problem:
            problems.append((i.model, problem))
            continue
        speedup, lines = _paired_steps(f, i)
        if speedup is None:
            problems += [(i.model, line) for line in lines]
            continue
        served.append(speedup)
        notes += pairing_notes(f, i) + lines
    judged = {s.int8_model for s in served}
    notes += [line for model, line in problems if model not in judged]
    return served, list(dict.fromkeys(notes))


def _closed(run: LoadRun) -> list[LoadResult]:
    return [r for r in run.results if r.mode == ClosedLoop.mode]


def _mode_problem(fp32: LoadRun, int8: LoadRun) -> str | None:
    """Why runs without closed-loop steps on both sides give no ratio (None: both have some)."""
    if _closed(fp32) and _closed(int8):
        return None
    loops = ", ".join(f"{run.model} {_loop(run)} ({run.file or run.model})" for run in (int8, fp32))
    return (
        f"no closed-loop runs of both to compare ({loops}): the served verdict compares {int8.model} and "
        f"{fp32.model} at one user count; load-test both with --users N"
    )


def _loop(run: LoadRun) -> str:
    kinds = dict.fromkeys(LOOPS.get(r.mode, r.mode) for r in run.results)
    return " and ".join(kinds) or "with no step"


def _paired_steps(fp32: LoadRun, int8: LoadRun) -> tuple[ServedSpeedup | None, list[str]]:
    """The ratio at the highest user count at which both runs have a step fit to compare, and a line per step left
    out; without one, why not."""
    (fit_a, out_a), (fit_b, out_b) = _fit_steps(fp32), _fit_steps(int8)
    common = sorted(set(fit_a) & set(fit_b))
    if common:
        a, b = fit_a[common[-1]], fit_b[common[-1]]
        caveats = tuple(_caveats(a, b))
        served = ServedSpeedup(fp32.model, int8.model, a.users, a.throughput_rps, b.throughput_rps, caveats)
        return served, out_a + out_b
    if out_a or out_b:
        first, *rest = out_a + out_b
        return None, [f"{first}; no other step of both at one user count is left to compare", *rest]
    counts = [f"{_counts(run)} ({run.file or run.model})" for run in (fp32, int8)]
    return None, [
        f"no user count in common: FP32 {fp32.model} at {counts[0]}, INT8 {int8.model} at {counts[1]}; load-test "
        "both at one count (--users N)"
    ]


def _fit_steps(run: LoadRun) -> tuple[dict[int, LoadResult], list[str]]:
    """The run's closed-loop steps fit to compare, by user count, and a line per step left out and why."""
    fit, left_out = {}, []
    for step in _closed(run):
        reasons = unfit_reasons(step)
        if reasons:
            name = f"{step.label} ({run.file or run.model})"
            left_out.append(f"{name} is left out of the served INT8-vs-FP32 speed: {'; '.join(reasons)}")
        else:
            fit[step.users] = step
    return fit, left_out


def _counts(run: LoadRun) -> str:
    users = sorted({r.users for r in _closed(run)})
    return f"{', '.join(map(str, users))} user{'' if users == [1] else 's'}"


def unfit_reasons(step: LoadResult) -> list[str]:
    """Why a step's throughput does not stand for its variant's speed (none: it does). A step that served nothing
    has none here: `ServedSpeedup.comparable` says it served nothing, and no ratio is taken."""
    if not step.throughput_rps > 0:
        return []
    reasons = []
    share = step.failed_requests / step.requests if step.requests else 0.0
    if share > FAILED_SHARE_MAX:
        reasons.append(f"{100 * share:.1f} % of its requests failed (more than {FAILED_SHARE_MAX:.0%})")
    if step.server_restarted:
        reasons.append(f"tritonserver was replaced during its window ({step.server_restarted})")
    changed = step.server_counters_left_out
    if changed and not changed.startswith(NO_TRITON_COUNTERS):  # the model served changed, or another's load joined
        reasons.append(changed.partition(":")[0])
    if step.interrupted:
        reasons.append("it was interrupted before its planned end")
    if step.lost_workers:
        reasons.append(f"Locust {', '.join(step.lost_workers)} (its users' requests are in no count)")
    return reasons


def _caveats(fp32: LoadResult, int8: LoadResult) -> list[str]:
    """What the compared steps' own records say the ratio cannot vouch for: a busy machine, other models' load on the
    server, a client-bound latency."""
    steps, lines = (fp32, int8), []
    for step in steps:
        others = step.utilization.others_share if step.utilization else None
        if others is not None and others > BUSY_SHARE:
            lines.append(f"others took {others:.0%} of the cores during {step.label}")
    lines += [line for line in (_shared_server("FP32", fp32), _shared_server("INT8", int8)) if line]
    for step in steps:
        outside = step.outside_share()
        if outside is not None:
            lines.append(
                f"{outside:.0%} of the latency of {step.label} was spent outside the server, so its req/s measure "
                "the load generator too"
            )
    return lines


def _shared_server(precision: str, step: LoadResult) -> str | None:
    """A caveat where Triton served OTHER_LOAD_FLOOR or more requests of other models in the step's window: their
    load shared the server's cores, so the step's req/s are not its variant's alone."""
    if sum(step.other_models.values()) < OTHER_LOAD_FLOOR:
        return None
    busiest = sorted(step.other_models.items(), key=lambda item: -item[1])
    named = ", ".join(f"'{name}' {count}" for name, count in busiest[:3])
    more = f" and {len(busiest) - 3} more" if len(busiest) > 3 else ""
    return (
        f"{precision} {step.label} shared the server with other models' load ({named}{more} requests against its "
        f"{step.requests})"
    )
