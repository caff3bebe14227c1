"""`quantserve loadtest`'s exit status once its runs are saved and reported: 1, with one stderr line per cause,
for a run that failed (failed requests, unsent arrivals, lost workers: unless `--allow-failures`) or did not measure
what was planned (a step that measured nothing, a user's shape whose tick() raised mid-run, a model that stopped
being served mid-run: allowed or not); else 0. A step cut short by its model's going away says so in its one line:
the requests Triton refused before the run ended are that line's, not another.

A shape that reached its cap (`--duration`, 1 h without it) ran as planned: its note says so, and it exits 0.

The report it writes is judged too, as `quantserve report` judges it: a FAIL verdict exits 1 with one stderr line
naming its first cause (`verdict_status`). Session 57: a load test of a build shipped past its drift budget
(`optimize --keep-failing`) wrote a report reading FAIL and exited 0, so a CI step gating on `loadtest` passed it.
Failed requests and steps that measured nothing are `failure_status`'s to say (and `--allow-failures`'s to allow).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from loadtest.empty_window import nothing_measured

if TYPE_CHECKING:
    from loadtest.report import ReportInputs

REPORTED = "(notes above, report written); exit 1"


def failure_status(runs: list[Any], allowed: bool, command: str = "loadtest") -> int:
    """1 when any request failed, an open-loop arrival was never sent or a Locust worker was lost (unless allowed),
    or a step did not run as planned (allowed or not: no request completed in its window, its model stopped being
    served, or the user's shape's tick() raised), with one line on stderr saying which; else 0."""
    results = [r for run in runs for r in run.results]
    incomplete = _incomplete_lines(results)
    for line in incomplete:
        print(f"quantserve {command}: {line}", file=sys.stderr)
    results = [r for r in results if not r.model_gone]  # its line says it failed, and why
    if allowed or not any(r.has_failures for r in results):
        return 1 if incomplete else 0
    allow = " (--allow-failures: exit 0 where failures are expected)" if command == "loadtest" else ""
    print(f"quantserve {command}: {_failures(results)} {REPORTED}{allow}", file=sys.stderr)
    return 1


def _incomplete_lines(results: list[Any]) -> list[str]:
    """A line per step that measured nothing (a model slower than the window reported 0 requests and exit 0), per
    step whose model stopped being served and per user's shape cut short by its own tick() (figures so far kept)."""
    lines = [
        f"{r.label}: {nothing_measured(r)}, nothing was measured {REPORTED}" for r in results if r.measured_nothing
    ]
    lines += [f"{r.gone_note()} {REPORTED}" for r in results if r.model_gone]
    return lines + [
        f"{r.model}, {stage.label}: {stage.cut_short}: the planned load did not run to its end {REPORTED}"
        for r in results
        for stage in r.stages
        if stage.cut_short
    ]


def _failures(results: list[Any]) -> str:
    """`3 of 120 requests failed, 2 arrivals never sent, 1 Locust worker lost`: what made the run fail."""
    failed, unsent = sum(r.failed_requests for r in results), sum(r.unsent for r in results)
    total = sum(r.requests for r in results)
    parts = [f"{failed} of {total} requests failed"] if failed else []
    parts += [f"{unsent} arrivals never sent"] if unsent else []
    lost = sum(len(r.lost_workers) for r in results)
    parts += [f"{lost} Locust worker{'s' if lost > 1 else ''} lost"] if lost else []
    return ", ".join(parts)


def verdict_status(inputs: ReportInputs, command: str = "loadtest") -> int:
    """1 where the verdict of the report just written (the results folder's, as `quantserve report` judges it) is FAIL
    for a cause other than the failed or empty steps `failure_status` speaks for, with one stderr line naming the
    first; else 0."""
    from loadtest.verdict import load_failures

    said = set(load_failures(inputs.runs))
    causes = [line for line in inputs.verdict.failures if line not in said]
    if not causes:
        return 0
    more = f" (and {len(causes) - 1} more)" if len(causes) > 1 else ""
    line = f"the report's verdict is FAIL: {causes[0]}{more} (report written); exit 1"
    print(f"quantserve {command}: {line}", file=sys.stderr)
    return 1
