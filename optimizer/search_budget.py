"""The INT8 search's wall-clock budget, spent as a whole: reference run, candidates, probes, steps and timing.

The mixed-precision search once checked its cap only between its own probes, after every candidate had been
calibrated, verified and profiled: a YOLOv8-seg detector (640², masks) ran 4 min 30 s before its verification
on an idle 2-core machine, and was killed at 12 min under load. Now every unit of work (a candidate, a probe,
a step, a profile) is timed, and one starts only while the time left holds another as long as the longest of
its kind so far, with the time the winner's timing takes kept back.

A unit that started in time once ran to its end: PP-OCRv4's text detector (busy 2-core EPYC, 300 s) spent 593 s,
its 7-bit candidate begun in time and timed far past the end (and a first unit of a kind has no estimate at all:
it starts on any time left). Now a unit runs `stoppable`:
its long parts call `check` between their pieces (calibration chunks, held-out batches, the profile; the paired
timing's child is killed), and past the deadline the unit is abandoned, never used, and recorded as left undone.
The search then ships what finished or refuses as out of time, ending past its budget by at most one piece.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from optimizer.drift_budget import Refusal

BUDGET_FLAG = "--max-search-s"  # the optimize flag that sets SearchSettings.max_search_s
# kinds of unit the budget times
CANDIDATE, PROBE, STEP, PROFILE = "candidate", "probe", "step", "profile"
TIMING = "timing"  # a built model's profile and paired timing: what the mixed-precision winner still needs
T = TypeVar("T")


class DeadlineReached(BaseException):
    """`SearchBudget.check` inside a stoppable unit past its stop time: the unit is abandoned, its result unused.

    A BaseException, as asyncio's CancelledError is: calibration turns ONNX Runtime's plain exceptions into a failed
    build (`except Exception`), and a stop read that way would drop the scheme as broken instead of out of time.
    """

    def __init__(self, part: str = "") -> None:
        super().__init__(part)
        self.part = part  # what the unit was doing: "calibration: min/max ranges", "the paired timing"…


class SearchBudget:
    """`seconds` of wall clock from construction; `affords(kind)` before a unit, `spend(kind)` around it."""

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None) -> None:
        self.seconds, self.clock = seconds, clock or time.monotonic
        self.started = self.clock()
        self.costs: dict[str, float] = {}  # the longest unit of each kind so far, in seconds
        self.cut: list[str] = []  # what was left undone for lack of time
        self.bound_by_parent = False  # a `capped` view ending where its parent budget ends
        self.stops: list[float] = []  # when each stoppable unit under way is stopped (one list with `capped` views)

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.deadline - self.clock()

    def affords(self, kind: str, reserve: float = 0.0) -> bool:
        """Whether one more `kind` unit, as long as the longest so far, fits in the time left with `reserve` kept."""
        return self.left() - reserve > self.cost(kind)

    def cost(self, kind: str) -> float:
        return self.costs.get(kind, 0.0)

    @contextmanager
    def spend(self, kind: str) -> Iterator[None]:
        """Time one `kind` unit (its cost is what the next one of that kind is expected to take)."""
        started = self.clock()
        try:
            yield
        finally:
            self.costs[kind] = max(self.costs.get(kind, 0.0), self.clock() - started)

    @contextmanager
    def stoppable(self, kind: str, reserve: float = 0.0) -> Iterator[None]:
        """`spend(kind)` for a unit that `check` stops (DeadlineReached) once this budget's end less `reserve` has
        passed: the mixed-precision search's steps keep the winner's timing back."""
        stop = self.deadline - reserve
        self.stops.append(stop)
        try:
            with self.spend(kind):
                yield
        finally:
            self.stops.remove(stop)

    def attempt(self, kind: str, what: str, work: Callable[[], T], reserve: float = 0.0) -> T | None:
        """`work()` as one stoppable `kind` unit: its result, or None where the deadline stopped it (`what` then
        recorded as left undone, with the part it was stopped in)."""
        try:
            with self.stoppable(kind, reserve):
                return work()
        except DeadlineReached as stop:
            self.skip(f"{what}, stopped at the deadline{f' during {stop.part}' if stop.part else ''}")
            return None

    def stop_left(self) -> float | None:
        """Seconds until the stoppable units under way are stopped (their earliest stop); None outside any."""
        return min(self.stops) - self.clock() if self.stops else None

    def check(self, part: str = "") -> None:
        """Raise DeadlineReached where a stoppable unit is under way and its stop time has passed; called between
        the pieces of a unit's long parts (`part`: what it is doing), a no-op outside any unit."""
        left = self.stop_left()
        if left is not None and left <= 0:
            raise DeadlineReached(part)

    def capped(self, seconds: float) -> SearchBudget:
        """A view of this budget that ends `seconds` from now, or at this budget's end if sooner: the same clock and
        unit costs, its own record of what it left undone (`absorb` hands that back where this budget's end bound)."""
        view = SearchBudget(max(0.0, min(seconds, self.left())), self.clock)
        view.costs = self.costs  # one record of how long each kind of unit takes
        view.stops = self.stops  # a check on either sees the units under way in both
        view.bound_by_parent = self.left() <= seconds
        return view

    def absorb(self, view: SearchBudget) -> None:
        """What `view` (from `capped`) left undone, where this budget's end was what stopped it; a cap of its own
        that ran out (the mixed-precision search's) is that search's stop, not this budget's."""
        if view.bound_by_parent:
            self.cut.extend(view.cut)

    def skip(self, what: str) -> None:
        """Record that `what` was left undone: the time left could not hold it."""
        self.cut.append(what)

    @property
    def ran_out(self) -> bool:
        return bool(self.cut)

    def overran(self) -> float:
        """Seconds spent past the budget (0 within it): the piece of a unit under way at the deadline, or what no
        unit times (the reference run, the FP32 profile)."""
        return max(0.0, self.elapsed() - self.seconds)

    def record(self) -> dict[str, Any]:
        """`ran_out`: something was left undone, or the search ended past its budget (`overran_s`): CRAFT's search
        spent 532 s of 300 with nothing left undone, recorded as "ran_out: false"."""
        overran = round(self.overran(), 2)
        return {
            "max_search_s": self.seconds,
            "spent_s": round(self.elapsed(), 2),
            "ran_out": self.ran_out or overran > 0,
            "overran_s": overran,
            "left_undone": list(self.cut),
            "unit_s": {kind: round(seconds, 2) for kind, seconds in self.costs.items()},
        }

    def refusal(self, closest: str = "", far: str = "") -> str:
        """The one line optimize exits with when the time ran out before any INT8 model held the drift budget: it
        names the flag that raises the budget, or, given `far` (why more time is unlikely to hold it, and what to do
        instead: `SearchVerdict._refuse_unverified`), says that instead."""
        undone = f" (left undone: {self.cut[0]})" if self.cut else ""
        near = f"; closest: {closest}" if closest else ""
        advice = far or (
            f"nothing written: raise the budget with {BUDGET_FLAG} (e.g. {BUDGET_FLAG} {max(2 * self.seconds, 120):g}) "
            "or deploy fp32"
        )
        return Refusal(
            f"the INT8 search ran out of time: {self.elapsed():.0f} s of its {self.seconds:g} s budget spent before "
            f"any INT8 model was verified within the drift budget and timed{undone}{near}; {advice}",
            {"refused_for": "time", "time_budget": self.record(), "closest": closest or None, "time_may_help": not far},
        )


def overrun_note(record: dict[str, Any]) -> str:
    """The note `optimize` prints where the search ended past its budget (`SearchBudget.record`), "" where it did
    not: a unit is stopped between the pieces of its work, so the piece under way at the deadline (a calibration
    chunk, a held-out batch, a profile) still ends past it, and the user should know the search took longer than
    asked, and why."""
    overran = float(record.get("overran_s") or 0.0)
    if overran <= 0:
        return ""
    units = record.get("unit_s") or {}
    longest = max(units, key=units.get, default=None)  # type: ignore[arg-type]
    unit = f" (its longest unit, a {longest}, took {units[longest]:.0f} s)" if longest else ""
    return (
        f"the INT8 search took {record['spent_s']:.0f} s of its {record['max_search_s']:g} s budget ({BUDGET_FLAG}): "
        f"a unit started within it ran {overran:.0f} s past it{unit}"
    )
