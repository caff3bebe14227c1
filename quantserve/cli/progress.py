"""Progress bars (rich) for long work, with elapsed and remaining time; silent when nobody watches.

Bars go to stderr, so stdout keeps only results (and `--json` keeps exactly one document). They
are off under `--quiet`, `--json`, or when stdout or stderr is not a terminal (pipes, CI logs). Where
stderr is not a terminal (a CI log) and neither flag is given, long work says it is still running
instead: one line every HEARTBEAT_S once it has run that long (`Heartbeat`), so a short run prints none.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def is_quiet(args: argparse.Namespace) -> bool:
    """No progress and no chatter: `--quiet`, `--json`, or output that is not a terminal."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return True
    return not (sys.stdout.isatty() and sys.stderr.isatty())


def wants_heartbeat(args: argparse.Namespace) -> bool:
    """Lines instead of a bar: stderr is not a terminal (a CI log, a pipe) and neither --quiet nor --json given."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return False
    return not sys.stderr.isatty()


HEARTBEAT_S = 30.0


class Heartbeat:
    """Every `interval_s`, one line on `stream` naming what runs now and for how long, e.g.
    `quantserve: optimize: still running (2m30s): calibrate: 3 of 8 chunks` — a CI log of a 15-minute calibration
    showed nothing before. A daemon thread; `set(text)` names the work now running."""

    def __init__(self, title: str, interval_s: float = HEARTBEAT_S, stream: TextIO | None = None) -> None:
        self.title = title
        self.interval_s = interval_s
        self.stream = stream
        self.text = ""
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"{title}-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def set(self, text: str) -> None:
        self.text = text

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def line(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        minutes, seconds = divmod(elapsed, 60)
        took = f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
        return f"quantserve: {self.title}: still running ({took})" + (f": {self.text}" if self.text else "")

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval_s):
            print(self.line(), file=self.stream or sys.stderr, flush=True)


def new_progress(quiet: bool, console: Console | None = None) -> Progress:
    """A bar with count, elapsed and remaining time, drawn on stderr (or `console`) and cleared when done."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
        disable=quiet,
    )


class StageProgress:
    """One bar over a known list of named stages; call it with each stage's name as the stage starts.

    Matches the optimizer's `on_stage(stage)` callback: the bar advances past every earlier stage.
    `stage_words` names a stage's work where its name alone says too little (a factory training the model for
    minutes inside "export": `optimize`'s `stage_words`).
    `on_progress(done, total, what)` (the optimizer's callback inside a long stage: calibration chunks,
    INT8 candidates, mixed-precision groups) draws a second bar under it, restarted whenever `what`
    changes so its remaining time is that of the work now running; it goes when the next stage starts.
    """

    def __init__(
        self,
        title: str,
        stages: Sequence[str],
        quiet: bool,
        console: Console | None = None,
        heartbeat: Heartbeat | None = None,
        stage_words: dict[str, str] | None = None,
    ) -> None:
        self.title = title
        self.stage_words = stage_words or {}
        self.stages = list(stages)
        self.progress = new_progress(quiet, console)
        self.task: TaskID | None = None
        self.detail: TaskID | None = None
        self.detail_what = ""
        self.heartbeat = heartbeat  # lines where no bar is drawn (wants_heartbeat)
        self.stage = ""

    def __enter__(self) -> StageProgress:
        self.progress.start()
        self.task = self.progress.add_task(self.title, total=len(self.stages))
        if self.heartbeat is not None:
            self.heartbeat.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.progress.stop()

    def __call__(self, stage: str) -> None:
        self.stage = stage
        shown = self.stage_words.get(stage, stage)
        if self.heartbeat is not None:
            self.heartbeat.set(shown)
        if self.task is None:
            return
        done = self.stages.index(stage) if stage in self.stages else self.progress.tasks[0].completed
        self.progress.update(self.task, completed=done, description=f"{self.title}: {shown}")
        if stage in self.stages and self.detail is not None:
            self.progress.remove_task(self.detail)
            self.detail, self.detail_what = None, ""

    def on_progress(self, done: int, total: int, what: str) -> None:
        """`done` of `total` units of `what` finished (e.g. 3 of 8 calibration chunks)."""
        if self.heartbeat is not None:
            self.heartbeat.set(f"{self.stage}: {what} {done} of {total}" if self.stage else f"{what} {done} of {total}")
        if self.task is None:
            return
        if self.detail is None:
            self.detail = self.progress.add_task(f"  {what}", total=total, completed=done)
        elif what != self.detail_what:
            self.progress.reset(self.detail, total=total, description=f"  {what}")
        self.detail_what = what
        self.progress.update(self.detail, completed=done, total=total)


class StepProgress:
    """One bar over N equal steps (load-test steps, tune trials): `advance(description)` after each."""

    def __init__(self, title: str, total: int, quiet: bool, console: Console | None = None) -> None:
        self.progress = new_progress(quiet, console)
        self.title = title
        self.total = total
        self.task: TaskID | None = None

    def __enter__(self) -> StepProgress:
        self.progress.start()
        self.task = self.progress.add_task(self.title, total=self.total)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()

    def describe(self, text: str) -> None:
        """Name the step now running."""
        if self.task is not None:
            self.progress.update(self.task, description=f"{self.title}: {text}")

    def advance(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)
