"""What `quantserve loadtest` prints around each run's table: the plan of a trace replay or a user's shape before
it starts, a row per stage of a staged step, the note where a model's served versions changed, and the note where
the results folder also holds other models' runs. Printing only: the figures come from the saved runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.load_run import LoadRun
    from loadtest.load_settings import LoadSettings
    from loadtest.report import ReportInputs


def versions_line(run: LoadRun, settings: LoadSettings) -> str | None:
    """The run's note where its model's served versions changed (`RunIdentity.versions_note`), judged by the versions
    that answered it: those its windows recorded, or the one a run pinned to a version (--model-version) addressed."""
    from loadtest.run_identity import answered_versions

    if run.identity is None:
        return None
    answered = answered_versions(result.version_spans for result in run.results)
    if answered is None and settings.model_version:  # a record without spans: the pinned version alone answered
        answered = [int(settings.model_version)]
    return run.identity.versions_note(settings.label, run.precision, answered)


def print_plan(pattern: Any, duration: float, json_out: bool, unused: list[str]) -> None:
    """What a trace replay or the user's shape will do, said before it starts (on stderr under --json), after the
    `unused` lines (`set_aside_unused`)."""
    from loadtest.load_pattern import TraceReplay
    from loadtest.trace_plan import plan_lines
    from loadtest.user_shape import UserShape

    lines = list(unused)
    if isinstance(pattern, TraceReplay):  # the replay's length and rate; a likely unit mistake named
        lines += plan_lines(pattern.trace, duration)
    if isinstance(pattern, UserShape):  # the shape's dry run: its stages, and whether it ends within its cap
        lines += [pattern.plan.line(pattern.path, pattern.cap_s)]
    for line in lines:
        print(line, file=sys.stderr if json_out else sys.stdout, flush=True)


def print_stage_table(run: Any) -> None:
    """A row per stage of a staged step (`--stages`), under the step's own row, which blends them."""
    from loadtest.report_lines import STAGE_HEADER, stage_cells
    from quantserve.cli.tables import NAME, Column, print_rows

    columns = [Column(STAGE_HEADER[1], NAME), *(Column(header) for header in STAGE_HEADER[2:])]
    for result in (r for r in run.results if r.stages):
        title = f"{result.label}, stage by stage (between the moments Locust's shape switched users)"
        print_rows(title, columns, [stage_cells(stage) for stage in result.stages])


def print_earlier_runs(out: Path, inputs: ReportInputs, models: set[str]) -> None:
    """A note when the folder (`inputs`: its results, as the report read them) also holds other models' runs (an
    earlier loadtest into the same --out): the report compares every run in the folder, so its verdict is said here
    too."""
    from loadtest.report_verdict import verdict_headline

    others = [run for run in inputs.runs if run.model not in models]
    if not others:
        return
    said = [
        f"{run.model} (started {run.identity.started_at if run.identity else 'at a time not recorded'})"
        for run in others
    ]
    print(f"note: {out} also holds load results of {', '.join(said)}; the report compares every run in the folder")
    print(f"verdict: {verdict_headline(inputs.verdict)}")
