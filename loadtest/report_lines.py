"""The lines under a report's load table: each replayed trace, requests sent late, outages, and per step what went
wrong or what its figures rest on — the same lines `quantserve loadtest` prints, formatted from recorded results
(`loadtest.report` renders them into Markdown and HTML); the rows of a staged load's table of its stages; the
verdict's drift table and its lines on thin evidence; and a table as Markdown or HTML."""

from __future__ import annotations

import fcntl
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from loadtest.load_run import LoadRun
from loadtest.recording_files import LOCK_FILE
from loadtest.results import LoadResult
from loadtest.stage_figures import StageFigures, spans_note, versions_note
from loadtest.sweep_knee import sweep_note
from loadtest.timeline import Outage
from loadtest.verdict import Verdict
from loadtest.window_notes import cut_note, other_load_note, stall_note, tail_note


def outage_text(outage: Outage) -> str:
    return (
        f"no successful request for {outage.duration_s:.1f} s (t = {outage.start_s:.2f}–{outage.end_s:.2f} s), "
        f"{outage.failed_requests} requests failed in it"
    )


def trace_lines(runs: list[LoadRun]) -> list[str]:
    """What each replayed trace was: a mean rate alone hides the bursts the latency figures answer to."""
    lines = []
    for r in (r for run in runs for r in run.results if r.trace):
        t = r.trace or {}
        sizes = (
            f"; requests of {t['request_sizes']} sizes, mean {t['mean_request_samples']:.3g} samples, "
            f"up to {t['max_request_samples']}"
            if t.get("mean_request_samples")
            else ""
        )
        lines.append(
            f"{r.label}: {t['requests_per_pass']} arrivals a {t['pass_s']:.4g} s pass ({played(r, t)}; speed "
            f"{t['speed']:g}), "
            f"mean {t['mean_rate_rps']:.4g}/s, busiest second {t['peak_rate_rps_1s']:.4g}/s, gaps' coefficient of "
            f"variation {t['gap_cv']:g} (0 even, 1 Poisson){sizes}"
        )
    return lines


def played(result: LoadResult, trace: dict[str, Any]) -> str:
    """How much of the trace the window played: "1 pass", "looped: 2.5 passes" (a one-pass replay's report read
    "looped" beside a plan line of "1 pass", session 46), or "0.4 of a pass"."""
    span = result.offered_window_s or result.window_s
    if not trace.get("pass_s") or not span:
        return "passes not known"
    passes = float(f"{span / trace['pass_s']:.3g}")  # as the plan line rounds it (`trace_plan.plan_lines`)
    if passes < 1:
        return f"{passes:g} of a pass"
    return "1 pass" if passes == 1 else f"looped: {passes:g} passes"


def late_lines(runs: list[LoadRun]) -> list[str]:
    return [note for run in runs for r in run.results if (note := r.send_lag_note())]


def outage_lines(runs: list[LoadRun]) -> list[str]:
    return [f"{r.label}: {outage_text(o)}" for run in runs for r in run.results for o in r.outages]


def step_lines(runs: list[LoadRun]) -> list[tuple[str, str]]:
    """What went wrong during a step or what its figures rest on, by kind: the commonest failure, a restart,
    requests never answered or never sent, a model slower than the window, no counters, a Locust worker lost, the
    client's deadline (and the crash its cancellations cause in Triton before 2.53), a stall no failure shows,
    requests cut at the window's end, a p99 on few requests, latency spent outside Triton, and where a sweep stopped
    paying (the same lines `quantserve loadtest` prints)."""
    found = []
    for r in (r for run in runs for r in run.results):
        answered = r.requests - r.failed_requests
        notes = (
            ("Model gone", r.gone_note()),
            ("Failed", r.failure_note()),
            ("Deadline", r.deadline_line()),
            ("Stall", stall_note(r.label, r.mode, r.latency, r.timeline, r.stage_latencies)),
            ("Window end", cut_note(r.label, r.mode, r.cut_at_end, answered, r.cut_max_ms, r.unsent)),
            ("Tail", tail_note(r.label, r.latency.count)),
            *(("Tail", note) for note in r.stage_tail_notes()),
            ("Client", r.outside_server_note()),
            ("Server percentiles", r.server_percentiles_note()),
            ("Other load", other_load_note(r.label, r.other_models, r.requests)),
            ("Stages", r.stages_note()),
            ("Stages", versions_note(r.label, r.stages)),
            ("Versions", None if r.stages else spans_note(r.label, r.version_spans)),
            ("Restart", r.restart_note()),
            ("Restart", between_steps_note(r)),
            ("Server counters", r.counters_note()),
            ("Unanswered", r.unanswered_note()),
            ("Unsent", r.unsent_note()),
            ("In flight", r.in_flight_note()),
            ("Counters", r.metrics_note()),
            ("Workers", r.lost_workers_note()),
            ("Lengths", r.lengths_note()),
        )
        found += [(kind, note) for kind, note in notes if note]
    return found + [("Sweep", note) for run in runs if (note := sweep_note(run))]


def between_steps_note(result: LoadResult) -> str | None:
    """The note of a restart before the step (between two steps or models' runs, `server_back`): the report had
    left it out, said only in the results file and the loadtest's output (session 59)."""
    said = (result.warm_up or {}).get("restarted_between_steps")  # `server_back.BETWEEN_STEPS` (it imports report)
    return f"{result.label}: {said}" if said else None


def padding_lines(runs: list[LoadRun]) -> list[str]:
    """How each run's requests were sent where the data is padded, once a run (`LoadResult.padding_note`: which
    inputs each length input cut, or why none was cut), as `quantserve loadtest` printed it before the load; and,
    where several inputs cut them, whose lengths the per-length table counts. Neither was in the report nor the
    results before session 60: a reader could not tell the requests had been cut at all."""
    lines: dict[str, None] = {}
    for run in runs:
        for r in run.results:
            counted = r.lengths.length_input if r.lengths and r.lengths.not_counted else None
            table = f"; the lengths per request below are those input '{counted}' cut" if counted else ""
            if r.padding_note:
                lines[f"{run.name}: {r.padding_note}{table}"] = None
    return list(lines)


LENGTH_TITLE = "Per request length (requests cut to their real length went at several; the row above pools them)"
LENGTH_HEADER = ["step", "length", "requests", "share", "p50 ms", "p99 ms"]


def length_rows(runs: list[LoadRun]) -> list[list[str]]:
    """A row per length (or range of lengths) of each step whose requests went at several
    (`loadtest.length_figures`)."""
    return [[r.label, *part.cells()] for run in runs for r in run.results if r.lengths for part in r.lengths.ranges]


STAGE_HEADER = ["step", "stage", "users", "seconds", "requests", "failed", "req/s", "p50 ms", "p90 ms", "p99 ms"]


def stage_rows(runs: list[LoadRun]) -> list[list[str]]:
    """A row per stage of each staged step (`loadtest.stage_figures`): what each stage's users met, which the
    step's own row blends (the 2-user stages' p50 beside the 48-user stage's p99)."""
    return [[run.name, *stage_cells(stage)] for run in runs for r in run.results for stage in r.stages]


def stage_cells(stage: StageFigures) -> list[str]:
    """A stage's cells after the step: stage (and the versions that answered it, where more than one did: a swap fell
    inside it), users, seconds measured (of those planned), figures."""
    latency = stage.latency
    swapped = f" (v{'+'.join(map(str, stage.versions))})" if stage.versions and len(stage.versions) > 1 else ""
    return [
        f"{stage.number}/{stage.stages}{swapped}",
        stage.users_ran,
        f"{stage.end_s - stage.start_s:.1f} of {stage.planned_s:g}",
        str(stage.requests),
        str(stage.failed_requests),
        *(_figure(value, digits) for value, digits in ((stage.throughput_rps, 1), (latency.p50_ms, 2))),
        *(_figure(value, 2) for value in (latency.p90_ms, latency.p99_ms)),
    ]


def _figure(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"  # NaN: nothing answered in the stage


def drift_table(verdict: Verdict) -> tuple[list[str], list[list[str]]]:
    """The verdict's budgeted metrics: a row each (`loadtest.budget_rows.DriftRow.cells`)."""
    header = ["variant", "output", "kind", "metric", "value", "budget", ""]
    return header, [r.cells() for r in verdict.drift]


def evidence_lines(verdict: Verdict) -> list[tuple[str, str]]:
    """A line per budgeted rate held on held-out rows too few to show it, by kind (`loadtest.verdict.note_evidence`):
    where a build's or a served variant's drift "passed" on 1 row, the report said PASS with no word of it."""
    unshown = "Not shown (optimize refuses rows this few without --allow-thin-evidence)"
    return [(unshown, line) for line in verdict.not_shown] + [("Thin evidence", line) for line in verdict.thin]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


TUNE_FILE, REMEASURED = "tune.json", "remeasure"  # what `quantserve tune --out DIR` leaves (quantserve.cli.tune_winner)


def no_results_line(results_dir: Path, loads: str, accuracy: str) -> str:
    """Why `report DIR` has nothing to report; a tune's --out folder named as one, its re-measure's folder given
    (it said "run loadtest or evaluate first" beside DIR/remeasure/load-NAME.json, session 29)."""
    said = f"{results_dir}: no {loads} or {accuracy}"
    if (results_dir / TUNE_FILE).is_file():
        again = results_dir / REMEASURED
        where = f"; its winner's re-measure: quantserve report {again}" if again.is_dir() else ""
        return f"{said}: it holds a tune search ({TUNE_FILE}, reported in tune.html){where}"
    left = left_by(results_dir / LOCK_FILE)
    if left:  # a run held the folder and saved nothing: stopped before its end (an evaluation saves only then)
        return f"{said}: {left}"
    return f"{said}; run loadtest or evaluate first"


def left_by(lock: Path) -> str:
    """What the lock a load run or evaluation leaves in its --out says of it (`recording_files.results_folder_held`:
    it writes its pid there): still running, or gone before saving anything; "" where no pid is recorded. An
    evaluate killed while scoring left only the lock, and `report` said "run loadtest or evaluate first" (session
    52)."""
    try:
        pid = int(lock.read_text().strip())
        fd = os.open(lock, os.O_RDONLY)
    except (OSError, ValueError):
        return ""
    try:  # the run holds its flock while it runs: taken here, nothing holds it any more
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return f"a run (pid {pid}) is still writing here: report it when it ends"
    finally:
        os.close(fd)
    return f"a run (pid {pid}) worked here and stopped before saving anything (interrupted or killed): run it again"
