"""Runs of one precision side by side ("A/B"): the load runs of a model's variants of one precision in one results
folder (FP32 deployed naive and as `tune` left it, INT8 with 1 and 2 instances, versions 1 and 2 as
`--model NAME@1,NAME@2`), their figures and ratios at each users/rate step every one of them was measured at.

The INT8-vs-FP32 verdict compares variants of two precisions only: two FP32 runs in one folder got no comparison at
all. Runs are compared only where `loadtest.run_pairing` would pair them (one source model, data set, client machine,
server, request batch, Locust workers), and a line says why where they are not. The ratios are to the run
load-tested first (its recorded start; the file name where none is recorded): the "before" of a before/after, not a
pick by the figures. This judges nothing: figures and ratios only. Runs are named by model, the versions served at
their start and how they were served (`run_identity.served_config`: max batch, queue delay, preferred sizes not the
default, ragged batching, queue policy, instances), and Triton's own avg batch shows what the batcher did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.report_lines import html_table, md_table
from loadtest.results import LoadResult
from loadtest.run_pairing import pairing_notes, pairing_problem

OUTCOME = "not compared in the A/B table"
TITLE = "A/B: load runs of one precision side by side (figures and ratios only, nothing judged)"
NO_CONFIG = (
    "Runs are named by model, the versions served at their start and how they were served (max batch, queue delay, "
    "instances; '?' where a run from before it was recorded); avg batch is Triton's own count over the window."
)
HEADER = [
    "step",
    "run",
    "served (versions; config)",
    "req/s",
    "p50 ms",
    "p99 ms",
    "failed",
    "avg batch",
    "req/s ×",
    "p99 ×",
]
EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class ABTable:
    """Two or more runs of one precision that compare, at the steps all of them measured; the first is the base."""

    precision: str  # "FP32", "INT8"… or "unknown precision"
    runs: list[LoadRun]
    steps: list[Hashable]  # the step keys (`step_key`) every run measured, in the base's order

    def title(self) -> str:
        return f"{self.precision}: ratios to {self.runs[0].name}, load-tested first"

    def rows(self) -> list[list[str]]:
        """A row per step and run: the step, the run, its figures and its ratios to the base at that step."""
        return [self._row(key, run) for key in self.steps for run in self.runs]

    def _row(self, key: Hashable, run: LoadRun) -> list[str]:
        r, base = _step(run, key), _step(self.runs[0], key)
        versions = run.identity.versions_words() if run.identity else "–"
        versions += f"; {(run.identity.config_words() if run.identity else None) or '?'}"
        figures = [_n(r.throughput_rps, 1), _n(r.latency.p50_ms, 2), _n(r.latency.p99_ms, 2), str(r.failed_requests)]
        ratios = ["base", "base"] if run is self.runs[0] else [_x(*pair) for pair in _ratios(r, base)]
        return [step_name(r), run.name, versions, *figures, _n(r.avg_batch_size, 2), *ratios]

    def console_lines(self) -> list[str]:
        """`A/B FP32 mlp_tuned at 4 users: 2.00× req/s (2000.0 vs 1000.0), p99 0.50× (2.00 vs 4.00 ms) of mlp_fp32`."""
        lines = []
        for key in self.steps:
            base = _step(self.runs[0], key)
            for run in self.runs[1:]:
                r = _step(run, key)
                (rps, base_rps), (p99, base_p99) = _ratios(r, base)
                lines.append(
                    f"A/B {self.precision} {run.name} at {step_name(r)}: {_x(rps, base_rps)} req/s "
                    f"({_n(rps, 1)} vs {_n(base_rps, 1)}), p99 {_x(p99, base_p99)} ({_n(p99, 2)} vs "
                    f"{_n(base_p99, 2)} ms), {r.failed_requests} vs {base.failed_requests} failed, of "
                    f"{self.runs[0].name}"
                )
        return lines


@dataclass
class ABReport:
    """The folder's A/B tables, and the lines on the runs of one precision not compared or steps left out."""

    tables: list[ABTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def console_lines(self) -> list[str]:
        return [line for table in self.tables for line in table.console_lines()] + [f"A/B: {n}" for n in self.notes]


def ab_report(runs: list[LoadRun], precision: Callable[[str], str | None]) -> ABReport:
    """The A/B tables of `runs` grouped by precision (as `precision` gives it by model) and, within one, by what
    compares (`loadtest.run_pairing`), each run joining the first group whose base it pairs with."""
    report = ABReport()
    kinds: dict[str, list[LoadRun]] = {}
    for run in sorted(runs, key=_load_order):
        kinds.setdefault(_kind(run, precision), []).append(run)
    for kind, members in kinds.items():
        groups = _groups(members, report.notes)
        for group in (g for g in groups if len(g) > 1):
            _add_table(report, kind.partition(":")[0] or "unknown precision", group)
    return report


def _kind(run: LoadRun, precision: Callable[[str], str | None]) -> str:
    """`FP32:`; where no precision is known, runs compare only with the versions of one model name (`:mlp`)."""
    known = precision(run.model)
    return f"{known.upper()}:" if known else f":{run.model.partition('@')[0]}"


def _load_order(run: LoadRun) -> tuple[bool, datetime, str]:
    started = run.identity.started() if run.identity else None
    return started is None, started or EARLIEST, run.file or run.model


def _groups(runs: list[LoadRun], notes: list[str]) -> list[list[LoadRun]]:
    """Runs of one kind in groups that compare; a line in `notes` for each run that pairs with no group's base."""
    groups: list[list[LoadRun]] = []
    for run in runs:
        problems = [pairing_problem(group[0], run, OUTCOME) for group in groups]
        home = next((group for group, problem in zip(groups, problems, strict=True) if problem is None), None)
        if home is not None:
            home.append(run)
            continue
        notes += [problems[0]] if problems and problems[0] else []
        groups.append([run])
    return groups


def _add_table(report: ABReport, precision: str, runs: list[LoadRun]) -> None:
    """The group's table at the steps all its runs measured, with a line for the steps left out, or for none."""
    keys = [list(_steps(run)) for run in runs]
    common = [key for key in keys[0] if all(key in other for other in keys[1:])]
    report.notes += [n for run in runs[1:] for n in pairing_notes(runs[0], run, "in the A/B table as two runs")]
    if not common:
        if len({run.model for run in runs}) > 1:  # one model's closed- and open-loop runs are no A/B
            names = " and ".join(run.name for run in runs)
            report.notes.append(f"{names} share no users/rate step: {OUTCOME}; load-test them at one --users or --rate")
        return
    report.tables.append(ABTable(precision, runs, common))
    for run, run_keys in zip(runs, keys, strict=True):
        left = [step_name(_steps(run)[key]) for key in run_keys if key not in common]
        if left:
            report.notes.append(f"{run.name}: {', '.join(left)} left out of the A/B table (not measured in every run)")


def _steps(run: LoadRun) -> dict[Hashable, LoadResult]:
    """The run's steps by `step_key`, the first of each."""
    found: dict[Hashable, LoadResult] = {}
    for r in run.results:
        found.setdefault(step_key(r), r)
    return found


def _step(run: LoadRun, key: Hashable) -> LoadResult:
    return _steps(run)[key]


def step_key(r: LoadResult) -> Hashable:
    """What makes two steps the same load: users (closed loop, staged), or the offered rate and arrivals, or the
    replayed trace and its speed (open loop)."""
    if r.mode == "open" and r.trace:
        return ("trace", Path(str(r.trace.get("file", ""))).name, r.trace.get("speed"))
    if r.mode == "open":
        return ("open", r.rate_rps, r.arrivals)
    return (r.mode, r.users)


def step_name(r: LoadResult) -> str:
    """`1 user`, `4 users`, `50 req/s poisson`, `trace arrivals.csv ×2`, `staged up to 16 users`; then
    `(interrupted)` where it was."""
    if r.mode == "open" and r.trace:
        speed = r.trace.get("speed")
        name = f"trace {Path(str(r.trace.get('file', ''))).name}"
        name += f" ×{speed:g}" if isinstance(speed, int | float) else ""
    elif r.mode == "open":
        name = f"{r.rate_rps or 0:g} req/s {r.arrivals or ''}".rstrip()
    elif r.mode == "staged":
        name = f"staged up to {r.users} users"
    else:
        name = f"{r.users} user{'' if r.users == 1 else 's'}"
    return f"{name} (interrupted)" if r.interrupted else name


def _ratios(r: LoadResult, base: LoadResult) -> tuple[tuple[float, float], tuple[float, float]]:
    return (r.throughput_rps, base.throughput_rps), (r.latency.p99_ms, base.latency.p99_ms)


def _x(value: float, base: float) -> str:
    """`2.00×` of `base`; `–` where either is no number or the base is 0."""
    if math.isnan(value) or math.isnan(base) or not base > 0:
        return "–"
    return f"{value / base:.2f}×"


def _n(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def ab_markdown(report: ABReport) -> list[str]:
    """The A/B section of report.md (nothing where the folder holds no two runs of one precision)."""
    if not report.tables and not report.notes:
        return []
    parts = [f"## {TITLE}", ""]
    for table in report.tables:
        parts += [f"### {table.title()}", "", md_table(HEADER, table.rows()), ""]
    parts += [NO_CONFIG, ""] if report.tables else []
    return parts + [f"- {note}" for note in report.notes] + ([""] if report.notes else [])


def ab_html(report: ABReport) -> list[str]:
    """The A/B section of report.html."""
    if not report.tables and not report.notes:
        return []
    body = [f"<h2>{escape(TITLE)}</h2>"]
    for table in report.tables:
        body += [f"<h3>{escape(table.title())}</h3>", html_table(HEADER, table.rows())]
    body += [f"<p>{escape(NO_CONFIG)}</p>"] if report.tables else []
    return body + [f"<p>{escape(note)}</p>" for note in report.notes]
