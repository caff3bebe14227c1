"""The INT8 search's wall-clock budget, spent as a whole: reference run, candidates, probes, steps and timing.

The mixed-precision search once checked its cap only between its own probes, after every candidate had been
calibrated, verified and profiled: a YOLOv8-seg detector (640², masks) ran 4 min 30 s before its verification
on an idle 2-core machine, and was killed at 12 min under load. Now every unit of work (a candidate, a probe,
a step, a profile) is timed, and one starts only while the time left holds another as long as the longest of
its kind so far, with the time the winner's profile takes kept back; a search past its budget stops and says
so. A unit that starts in time can still overrun it by what it takes beyond the longest before it, so the
search ends within its budget plus one unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from optimizer.drift_budget import Refusal

BUDGET_FLAG = "--max-search-s"  # the optimize flag that sets SearchSettings.max_search_s
# kinds of unit the budget times
CANDIDATE, PROBE, STEP, PROFILE = "candidate", "probe", "step", "profile"


class SearchBudget:
    """`seconds` of wall clock from construction; `affords(kind)` before a unit, `spend(kind)` around it."""

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None) -> None:
        self.seconds, self.clock = seconds, clock or time.monotonic
        self.started = self.clock()
        self.costs: dict[str, float] = {}  # the longest unit of each kind so far, in seconds
        self.cut: list[str] = []  # what was left undone for lack of time
        self.bound_by_parent = False  # a `capped` view ending where its parent budget ends

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.deadline - self.clock()

    def affords(self, kind: str, reserve: float = 0.0) -> bool:
        """Whether one more `kind` unit, as long as the longest so far, fits in the time left with `reserve` kept."""
        return self.left() - reserve > self.costs.get(kind, 0.0)

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

    def capped(self, seconds: float) -> SearchBudget:
        """A view of this budget that ends `seconds` from now, or at this budget's end if sooner: the same clock and
        unit costs, its own record of what it left undone (`absorb` hands that back where this budget's end bound)."""
        view = SearchBudget(max(0.0, min(seconds, self.left())), self.clock)
        view.costs = self.costs  # one record of how long each kind of unit takes
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
        """Seconds spent past the budget (0 within it): a unit started in time and ran beyond the end."""
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
        undone = f" ({self.cut[0]} left undone)" if self.cut else ""
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
    not: by design a unit that starts in time may run past the end (budget plus one unit), and the user should
    know the search took longer than asked, and why."""
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
