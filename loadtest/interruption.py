"""A load run stopped by Ctrl-C, SIGTERM or SIGHUP keeps what it measured.

The steps that finished are saved exactly as a finished run saves them, the step in progress from the
requests recorded up to the interrupt (its window cut short, marked `interrupted`) or, with nothing
recorded, left out with a note; the run records when, how far in and in which step it stopped. Both
exceptions are KeyboardInterrupts, so a caller that does not look for them stops as on any Ctrl-C (exit 130).
SIGHUP (the terminal closed) takes the same path inside `hangup_as_interrupt`: by default it killed the run at once,
nothing saved but Locust's CSVs.

A step whose model stopped being served (`loadtest.model_gone`) ends the run too, with no interrupt: the steps after
it are not started (each would be refused, the model not ready, and the run lost with its measured steps), and the
run is saved as a finished one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from loadtest.interruption_record import Interruption
from loadtest.load_run import LoadRun
from loadtest.model_gone import with_steps_left
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity

OUTSIDE_LOCUST = "omitted: interrupted outside its Locust run (before it started, or while its figures were summarized)"


@contextlib.contextmanager
def hangup_as_interrupt() -> Iterator[None]:
    """SIGHUP raises KeyboardInterrupt inside the block, as SIGTERM does in the CLI, so what was measured is saved
    and every Locust process stopped; the previous handler is put back after. Nothing where signals cannot be set
    (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGHUP, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a step's Locust run: what the step measured up to then, or None and why not.
    `whole`: the stop came after the window had reached its planned end (Locust shutting down, the figures being
    summarized); `result` is then the finished step's, complete."""

    def __init__(self, at: float, result: LoadResult | None, why: str = "", whole: bool = False) -> None:
        super().__init__(why or "interrupted")
        self.at, self.result, self.why, self.whole = at, result, why, whole


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM after saving what it measured: `run`, written to `path`. A run whose
    last window had ended whole before the stop is saved complete (`run.interrupted` None): nothing of it was cut."""

    def __init__(self, run: LoadRun, path: Path) -> None:
        whole = run.interrupted is None
        super().__init__(
            f"{'stopped after its last window ended; complete' if whole else 'interrupted; partial'} results in {path}"
        )
        self.run, self.path = run, path


class StepsEnded(Exception):
    """`MeasuredSteps.start` after a step whose model stopped being served: the block of steps ends there, quietly."""


class MeasuredSteps:
    """One run's step results as they finish. An interrupt inside it saves them, with the step in progress, as
    `load-<model>.json` and becomes a `RunInterrupted`; a second interrupt while saving stops at once. After a step
    cut short by its model's going away, the next `start` ends the block (`StepsEnded`, which it swallows)."""

    def __init__(
        self, model: str, steps: int, out_dir: Path, precision: str | None = None, identity: RunIdentity | None = None
    ) -> None:
        self.model, self.steps, self.out_dir = model, steps, Path(out_dir)
        self.precision = precision  # as the model's deployment recorded it (`serving.client.served_precision`)
        self.identity = identity  # the run's start, served versions, source model and data
        self.results: list[LoadResult] = []
        self.current = ""
        self.started = time.time()
        self.server_pid: int | None = None  # the server listening at the last step's end (`harness.measure_step`)

    def start(self, step_name: str) -> None:
        if self.results and self.results[-1].model_gone:
            with_steps_left(self.results[-1], self.steps - len(self.results))
            raise StepsEnded
        self.current = step_name

    def finish(self, result: LoadResult) -> None:
        self.results.append(result)

    def run(self) -> LoadRun:
        return LoadRun(self.model, self.results, precision=self.precision, identity=self.identity)

    def stopped_before(self, step_name: str, note: str) -> LoadRun:
        """The finished steps as a run stopped before step `step_name` started (the server gone between steps):
        none partial, `note` saying why."""
        run = self.run()
        run.interrupted = Interruption(
            *self._when(time.time()),
            step=step_name,
            step_number=len(self.results) + 1,
            steps=self.steps,
            completed_steps=len(self.results),
            partial_step_saved=False,
            note=note,
        )
        return run

    def __enter__(self) -> MeasuredSteps:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            raise self._save(exc) from None
        return isinstance(exc, StepsEnded)

    def _save(self, exc: KeyboardInterrupt) -> RunInterrupted:
        stopped = exc if isinstance(exc, StepInterrupted) else None
        at = stopped.at if stopped else time.time()
        if stopped is not None and stopped.whole and stopped.result is not None:
            return self._save_whole(stopped.result, at)
        partial = stopped.result if stopped else None
        kept = [*self.results, *([partial] if partial else [])]
        run = LoadRun(self.model, kept, precision=self.precision, identity=self.identity)
        run.interrupted = Interruption(
            *self._when(at),
            step=self.current,
            step_number=len(self.results) + 1,
            steps=self.steps,
            completed_steps=len(self.results),
            partial_step_saved=partial is not None,
            note=_step_note(self.current, partial, stopped),
        )
        return RunInterrupted(run, run.save(self.out_dir))

    def _when(self, at: float) -> tuple[str, float]:
        """The interrupt's UTC time (ISO 8601) and its seconds from the run's start."""
        stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return stamp, round(at - self.started, 3)

    def _save_whole(self, result: LoadResult, at: float) -> RunInterrupted:
        """The stop came after the step's window ended whole: the step is a finished one. After the run's last step
        nothing is missing, and the run is saved complete, unmarked (it had been saved partial, 5.0 s of its 5 s
        marked interrupted); before it, the run is marked as stopped between steps, none of them partial."""
        self.results.append(result)
        run = self.run()
        if len(self.results) < self.steps:
            run.interrupted = Interruption(
                *self._when(at),
                step=self.current,
                step_number=len(self.results),
                steps=self.steps,
                completed_steps=len(self.results),
                partial_step_saved=False,
                note=f"{self.current} complete: the stop came after its window ended; the steps after it not run",
            )
        return RunInterrupted(run, run.save(self.out_dir))


def _step_note(name: str, partial: LoadResult | None, stopped: StepInterrupted | None) -> str:
    """What became of the step in progress, in words."""
    if partial is not None:
        planned = f" of its {partial.planned_window_s:g} s" if partial.planned_window_s else ""
        return (
            f"{name} saved partial: {partial.requests} requests in {partial.window_s:.1f} s{planned} measured "
            "up to the interrupt"
        )
    if stopped is not None:
        return f"{name} omitted: {stopped.why}"
    return f"{name} {OUTSIDE_LOCUST}"
