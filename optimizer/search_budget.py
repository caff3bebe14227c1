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
A piece whose part took longer before than the time left is not begun either (`optimizer.search_pieces`): nanodet's
search ran 714 s of 600 on a piece begun just before its end. The search then ships what finished or refuses as out
of time, ending past its budget by at most a piece of a part not timed before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from optimizer.cpu_clock import BUSY_SHARE
from optimizer.drift_budget import Refusal
from optimizer.search_pieces import PieceTimes

BUDGET_FLAG = "--max-search-s"  # the optimize flag that sets SearchSettings.max_search_s
# kinds of unit the budget times
CANDIDATE, PROBE, STEP, PROFILE = "candidate", "probe", "step", "profile"
TIMING = "timing"  # a built model's profile and paired timing: what the mixed-precision winner still needs
CONFIRM = "confirmation"  # the winner judged on every held-out row, where the search judged fewer (`int8_verdict`)
NOUNS = {PROBE: "mixed-precision probe", STEP: "mixed-precision step", TIMING: "timing", CONFIRM: "confirmation"}
MIXED_OUT_OF_TIME = "search time budget spent"  # how `sensitivity.MixedPrecisionSearch` records its stop for time
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
        self.misfits: dict[str, dict[str, Any]] = {}  # why each unit left undone did not fit (`skip`), by its name
        self._refused: dict[str, Any] | None = None  # the last `affords` that said no, for the `skip` that follows
        self.setup_s: float | None = None  # spent before the first candidate was weighed: FP32 reference run, profile
        self.finished: set[str] = set()  # kinds of unit of which one ran to its end (not stopped at the deadline)
        self.parts: dict[str, float] = {}  # the latest unit's parts checked: seconds from its start to their last check
        self._unit_started = 0.0
        self._latest: dict[str, tuple[float, float]] = {}  # per kind: its cost before its latest unit, that unit's time
        self.pieces = PieceTimes()  # how long each part's pieces take: `check` begins none that would end past the stop

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.deadline - self.clock()

    def affords(self, kind: str, reserve: float = 0.0) -> bool:
        """Whether one more `kind` unit, as long as the longest so far, fits in the time left with `reserve` kept;
        where not, the figures are kept for the `skip` that records the unit as left undone (`misfit_phrase`)."""
        self._setup_ends(kind)
        fits = self.left() - reserve > self.cost(kind)
        left, cost = round(self.left(), 2), round(self.cost(kind), 2)
        self._refused = None if fits else {"unit": kind, "unit_s": cost, "left_s": left, "kept_s": round(reserve, 2)}
        return fits

    def spent_once(self, kind: str, seconds: float) -> None:
        """The `kind` unit just timed held `seconds` of work the next ones will not do again (a calibration whose
        ranges the next scheme reuses from the cache): its cost is the rest. Counted whole, a VGG16's first
        candidate (calibration, build, drift, timing) made the compute-only candidate that reuses its ranges look
        as long, and on a loaded machine the search skipped it and refused a 3.87×, 0.992-agreement INT8."""
        latest = self._latest.get(kind)
        if latest is not None:
            before, ran = latest
            self.costs[kind] = max(before, ran - min(seconds, ran))

    def cost(self, kind: str) -> float:
        return self.costs.get(kind, 0.0)

    def _setup_ends(self, kind: str) -> None:
        if kind == CANDIDATE and self.setup_s is None:
            self.setup_s = self.elapsed()

    @contextmanager
    def spend(self, kind: str) -> Iterator[None]:
        """Time one `kind` unit (its cost is what the next one of that kind is expected to take; one stopped at the
        deadline counts what it ran, the least its kind takes)."""
        self._setup_ends(kind)
        started = self.clock()
        try:
            yield
            self.finished.add(kind)
        finally:
            before, ran = self.costs.get(kind, 0.0), self.clock() - started
            self._latest[kind] = (before, ran)
            self.costs[kind] = max(before, ran)

    @contextmanager
    def stoppable(self, kind: str, reserve: float = 0.0) -> Iterator[None]:
        """`spend(kind)` for a unit that `check` stops (DeadlineReached) once this budget's end less `reserve` has
        passed: the mixed-precision search's steps keep the winner's timing back."""
        stop = self.deadline - reserve
        if not self.stops:  # the outermost unit under way: its parts are timed from here (`check`)
            self._unit_started, self.parts = self.clock(), {}
        self.stops.append(stop)
        try:
            with self.spend(kind):
                yield
        finally:
            self.stops.remove(stop)
            self.pieces.end(self.clock())

    def attempt(self, kind: str, what: str, work: Callable[[], T], reserve: float = 0.0) -> T | None:
        """`work()` as one stoppable `kind` unit: its result, or None where the deadline stopped it (`what` then
        recorded as left undone, with the part it was stopped in)."""
        self._refused = None  # a unit stopped at the deadline started in time: no misfit to record
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
        """Raise DeadlineReached where a stoppable unit is under way and its stop time has passed, or a piece of
        `part` (what it is about to do) took longer before than the time left; called before each piece of a unit's
        long parts, a no-op outside any unit."""
        left = self.stop_left()
        if left is None:
            return
        now = self.clock()
        if part:
            self.parts[part] = now - self._unit_started
        self.pieces.end(now)
        if left <= 0 or self.pieces.expected(part) > left:
            raise DeadlineReached(part)
        self.pieces.begin(part, now)

    def capped(self, seconds: float) -> SearchBudget:
        """A view of this budget that ends `seconds` from now, or at this budget's end if sooner: the same clock and
        unit costs, its own record of what it left undone (`absorb` hands that back where this budget's end bound)."""
        view = SearchBudget(max(0.0, min(seconds, self.left())), self.clock)
        view.costs, view._latest = self.costs, self._latest  # one record of how long each kind of unit takes
        view.stops, view.pieces = self.stops, self.pieces  # a check on either sees the units under way in both
        view.bound_by_parent = self.left() <= seconds
        return view

    def absorb(self, view: SearchBudget) -> None:
        """What `view` (from `capped`) left undone, where this budget's end was what stopped it; a cap of its own
        that ran out (the mixed-precision search's) is that search's stop, not this budget's."""
        if view.bound_by_parent:
            self.cut.extend(view.cut)
            self.misfits.update(view.misfits)

    def skip(self, what: str) -> None:
        """Record that `what` was left undone: the time left could not hold it (where an `affords` just said so,
        with its figures: the unit's expected length and the time left)."""
        self.cut.append(what)
        if self._refused is not None:
            self.misfits[what] = self._refused
            self._refused = None

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
            "first_undone": self.misfits.get(self.cut[0]) if self.cut else None,  # why it did not fit, where known
            "setup_s": None if self.setup_s is None else round(self.setup_s, 2),
        }

    def refusal(self, closest: str = "", far: str = "", judged: str = "") -> str:
        """The one line optimize exits with when the time ran out before any INT8 model held the drift budget: it
        names the flag that raises the budget, or, given `far` (why more time is unlikely to hold it, and what to do
        instead: `SearchVerdict._refuse_unverified`), says that instead; `judged`: the drift measured of candidates
        stopped before they were timed (`optimizer.time_drift_words`)."""
        undone = f" (left undone: {self.cut[0]})" if self.cut else ""
        near = f"; closest: {closest}" if closest else f"; {judged}" if judged else ""
        measured, more = self._first_candidate_advice() if not closest else ("", "")
        more = more or f"{max(2 * self.seconds, 120):g}"
        raise_it = f"raise the budget with {BUDGET_FLAG} (e.g. {BUDGET_FLAG} {more})"
        advice = far or f"nothing written: {measured}{raise_it} or deploy fp32"
        why = misfit_phrase(self.record()) if self.overran() <= 0 else ""  # past the budget, nothing to explain
        return Refusal(
            f"the INT8 search ran out of time: {self.elapsed():.0f} s of its {self.seconds:g} s budget spent before "
            f"any INT8 model was verified within the drift budget and timed{why}{undone}{near}; {advice}",
            {"refused_for": "time", "time_budget": self.record(), "closest": closest or None, "time_may_help": not far},
        )

    def _first_candidate_advice(self) -> tuple[str, str]:
        """Where no candidate ran to its end: what the search measured ("its set-up took 75 s and the first candidate
        ran 172 s before it was stopped (its calibration alone 120 s): ") and a budget that would hold them ("420: the
        set-up, and twice what the candidate ran"); ("", "") where a candidate finished or none was weighed. Twice the
        budget, as said before, starts from the budget, not from what was measured: OpenSpindleNet's set-up ran 377 s
        of 300 on a busy machine and was told 600, which leaves 223 s for a calibration and a held-out run that each
        take about as long as the set-up. So: the set-up, and twice the longer of it and the stopped candidate's time
        so far."""
        if self.setup_s is None or CANDIDATE in self.finished:
            return "", ""
        setup, ran = self.setup_s, self.cost(CANDIDATE)
        more = max(120, math.ceil((setup + 2 * max(ran, setup)) / 10) * 10)
        basis = "twice what the candidate ran" if ran >= setup else "twice as long again for a candidate"
        calibration = max((t for part, t in self.parts.items() if part.startswith("calibration")), default=0.0)
        alone = f" (its calibration alone {calibration:.0f} s)" if ran and calibration else ""
        if not ran:
            said = (
                f"its set-up (the FP32 reference run and profile) alone took {setup:.0f} s and no candidate started: "
            )
        else:
            before = f"its set-up took {setup:.0f} s and " if round(setup) else ""
            said = f"{before}the first candidate ran {ran:.0f} s before it was stopped{alone}: "
        return said, f"{more}: the set-up, and {basis}"


def misfit_phrase(record: dict[str, Any]) -> str:
    """Why the search stopped with time on its clock (`SearchBudget.record`): ", and the next candidate (about 156 s,
    as long as the longest so far) would not fit in the 80 s left"; "" where that is not recorded. "220 s of its 300 s
    budget spent" alone read as a contradiction (deepCR's U-Net, whose candidates took 155 s each). Where the search
    went on with shorter units after (mixed-precision steps), the time left is the time then left, said so: HiFi-GAN
    was told "566 s of its 600 s budget spent …, and the next candidate (about 305 s …) would not fit in the 249 s
    left"."""
    first = record.get("first_undone")
    if not first:
        return ""
    noun = NOUNS.get(first["unit"], first["unit"])
    about = f" (about {first['unit_s']:.0f} s, as long as the longest so far)" if first["unit_s"] > 0 else ""
    kept = f", the chosen model's timing (about {first['kept_s']:.0f} s) still to come" if first["kept_s"] > 0 else ""
    left = max(first["left_s"], 0)
    since = left - max(record["max_search_s"] - record["spent_s"], 0)  # spent after it was left undone
    then = f" then left (the {since:.0f} s since went to shorter units that fit)" if since >= 1 else " left"
    return f", and the next {noun}{about} would not fit in the {left:.0f} s{then}{kept}"


def unfinished_note(stage: dict[str, Any]) -> str:
    """The note `optimize` prints for an INT8 model shipped under --keep-failing (it misses its drift budget) by a
    search that ran out of time before trying everything; "" otherwise. deepCR's U-Net at --max-search-s 600 shipped
    with "budget MISSED" and no word that the compute-only candidate and every mixed-precision step were left
    undone: only the manifest said so, and the model read as the search's best."""
    record = stage.get("time_budget") or {}
    undone = _left_undone(stage)
    if not undone or stage.get("within_budget", True):
        return ""
    advice = f"; give it time with {_more_time(record)}" if record.get("left_undone") else ""
    return (
        f"kept failing: this INT8 model misses its drift budget and is the closest the search found before its time "
        f"ran out ({_spent(record)}), not the closest it could find (left undone: {'; '.join(undone)}){advice}"
    )


def left_undone_note(stage: dict[str, Any]) -> str:
    """The note `optimize` prints (and the stage records) for an INT8 model that holds its drift budget, shipped by a
    search whose time ran out before it tried everything; "" otherwise. TabPFN v1 (busy 2-core EPYC, 300 s) shipped
    static Q/DQ at 1.22× with no word that calibration had eaten the time of the dynamic candidate, which holds the
    same budget at 2.58×: only the manifest said it was left undone. Candidates dropped for another reason (failed to
    build, a model of 1 GiB or more) are the stage's `skipped`, not its budget's `left_undone`: not named here."""
    record = stage.get("time_budget") or {}
    undone = _left_undone(stage)
    if not undone or not stage.get("within_budget", False):
        return ""
    more = f"give it time with {_more_time(record)}" if record.get("left_undone") else ""  # not a mix's own cap
    busy = float((stage.get("speed") or {}).get("others_share") or 0.0) > BUSY_SHARE  # as the candidates were timed
    idle = "run it again when the machine is idle" if busy else ""
    options = [option for option in (more, idle) if option]
    advice = f"; {' or '.join(options)}" if options else ""
    return (
        f"the INT8 search's time ran out before it tried everything: {_spent(record)}{misfit_phrase(record)} (left "
        f"undone: {'; '.join(undone)}); this model holds its drift budget, but a faster one may exist{advice}"
    )


def time_cut_note(stage: dict[str, Any]) -> str:
    """What a shipped INT8 model's search left undone for lack of time, as `optimize` prints it: the --keep-failing
    note where the model misses its drift budget (`unfinished_note`), else `left_undone_note`; "" where nothing was."""
    return unfinished_note(stage) or left_undone_note(stage)


def _left_undone(stage: dict[str, Any]) -> list[str]:
    """What the stage's search left undone for lack of time: what its budget recorded (`SearchBudget.skip`), and a
    mixed-precision search that its time stopped before any step."""
    record = stage.get("time_budget") or {}
    if not record:
        return []
    undone = list(record.get("left_undone") or [])
    mixed = stage.get("mixed_precision") or {}
    idle = mixed.get("stopped") == MIXED_OUT_OF_TIME and not mixed.get("steps")
    if idle and not any(what.startswith("mixed precision") for what in undone):
        undone.append("the mixed-precision search, which took no step")
    return undone


def _spent(record: dict[str, Any]) -> str:
    return f"{record['spent_s']:.0f} s of its {record['max_search_s']:g} s budget spent"


def _more_time(record: dict[str, Any]) -> str:
    """The flag and value that give the search time for what it left undone: twice the budget, 120 s at least."""
    return f"{BUDGET_FLAG} {max(2 * float(record['max_search_s']), 120):g}"


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


def mixed_view(budget: SearchBudget, cap_s: float) -> SearchBudget:
    """The mixed-precision search's budget: `cap_s` for its probes and steps, then the winner's timing, which its
    steps keep back (`reserve_s`). A view of the cap alone kept the timing inside it: deepCR's timing took 89 s, more
    than the 60 s cap, so no probe or step could ever start, at any --max-search-s (session 29)."""
    return budget.capped(cap_s + budget.cost(TIMING))
