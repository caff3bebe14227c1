"""The demo's load steps, each variant's run saved as each of its steps finishes; Ctrl-C or SIGTERM keeps them.

Before, `load-<model>.json` was written only after the last step: an interrupt in the third of four steps left no
results file, so `quantserve report` marked all four steps' raw records INCOMPLETE ("killed by SIGKILL…"), three of
which had finished. Now the variant whose turn it was saves its run as `quantserve loadtest` does (the step in
progress cut at the interrupt and marked, or left out with why: `loadtest.interruption.MeasuredSteps`), every other
variant its finished steps, marked interrupted before the step it had not started; one line says what was saved.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.interruption import MeasuredSteps, RunInterrupted
from loadtest.interruption_record import Interruption
from loadtest.load_pattern import LoadStep
from loadtest.load_run import LoadRun
from loadtest.results import LoadResult


class DemoInterrupted(KeyboardInterrupt):
    """The demo's load steps stopped by Ctrl-C or SIGTERM after saving what they measured: `line` says what."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line

    def tell(self, out: Path) -> None:
        """Render the report of what was saved and say the line on stderr (a closed terminal takes none)."""
        from loadtest.report import render

        _, html_path = render(out)
        with contextlib.suppress(OSError):
            print(f"quantserve demo: {self.line}; report: {html_path}", file=sys.stderr)


def run_steps(
    names: list[str],
    steps: Sequence[LoadStep],
    titles: list[str],
    loads: dict[str, Any],
    out: Path,
    server_pid: int | None,
    precisions: dict[str, str | None],
    say: Callable[[str], None],
) -> dict[str, list[LoadResult]]:
    """Each of `steps` (loadtest.load_pattern's, said as `titles`) for every variant in turn, FP32 then INT8, INT8
    then FP32 at the next, so the two windows compared are seconds apart; each variant's run saved after each of
    its steps. Ctrl-C or SIGTERM raises `DemoInterrupted` once every variant's run is saved with what it measured.
    Each run records its identity as `quantserve loadtest`'s does (`harness.run_identity`): without it, the demo's own
    report said its models had no recorded source ("deployed before quantserve recorded its source model")."""
    from loadtest.harness import run_identity, run_step

    measured = {
        name: MeasuredSteps(name, len(steps), out, precisions.get(name), run_identity(loads[name])[0]) for name in names
    }
    try:
        for i, step in enumerate(steps):
            turn = names if i % 2 == 0 else names[::-1]
            say(f"load {titles[i]}: {', '.join(turn)}")
            for name in turn:
                with measured[name]:  # an interrupt in it: saved with the step in progress, raised as RunInterrupted
                    measured[name].start(step.name)
                    measured[name].finish(run_step(loads[name], step, out, server_pid))
                measured[name].run().save(out)
    except KeyboardInterrupt as exc:
        stopped = exc.run if isinstance(exc, RunInterrupted) else None
        raise DemoInterrupted(_save_the_others(measured, [s.name for s in steps], stopped, out)) from None
    return {name: m.results for name, m in measured.items()}


def _save_the_others(measured: dict[str, MeasuredSteps], steps: list[str], stopped: LoadRun | None, out: Path) -> str:
    """Mark and save the run of every variant but `stopped` (the one whose step the interrupt cut, saved already)
    that had steps left; one line of what each variant's saved run holds."""
    at = time.time()
    said = []
    for name, steps_done in measured.items():
        done = list(steps_done.results)
        kept = ", ".join(step for step, _ in zip(steps, done, strict=False)) or "no step"
        if stopped is not None and name == stopped.model:
            stop = stopped.interrupted
            said.append(f"{name}: {stop.note if stop else kept}" + (f" (after {kept} finished)" if done else ""))
            continue
        if len(done) == len(steps):
            said.append(f"{name}: all {len(steps)} steps finished")
            continue
        if done:  # nothing measured, nothing saved: a run of no step is no results file
            next_step = steps[len(done)]
            run = LoadRun(name, done, precision=steps_done.precision, identity=steps_done.identity)
            run.interrupted = Interruption(
                at=datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                after_s=round(at - steps_done.started, 3),
                step=next_step,
                step_number=len(done) + 1,
                steps=len(steps),
                completed_steps=len(done),
                partial_step_saved=False,
                note=f"{next_step} not started: the demo was interrupted before its turn",
            )
            run.save(out)
        said.append(f"{name}: {kept} finished")
    return f"interrupted in the load steps; saved in {out}: {'; '.join(said)}"
