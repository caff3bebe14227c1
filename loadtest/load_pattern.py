"""Load patterns as objects: closed loop with N users, open loop at a fixed rate (constant or Poisson) or on
a recorded trace's arrivals, a sweep, and staged closed-loop users (a step or a spike) inside one window.

A pattern is a sequence of measured steps (`steps()`); each step knows its Locust file, its Locust
options and how it is named, checked and recorded, so no other module branches on a mode string.
`loadtest.load_flags` builds a pattern from the CLI's flags.

Why a sweep is not Locust's `LoadTestShape`: each step must be measured over its own window —
Triton's counters scraped at both of its ends, its own Locust CSVs and raw latency files — and one
Locust run driven by a shape has one stats window and one spawn-complete/stopping pair, so the
steps would blur into each other. So a sweep runs one Locust process per step. Nor does
`LoadTestShape` fit the open loop: it sets how many users run, while an open-loop rate is an
arrival schedule inside the user (`loadtest.open_loop_user.OpenLoopTritonUser`), independent of how
many users carry it. Where `LoadTestShape` does fit is a step or spike shape whose load changes
*within* one measured window: `Staged`, whose locustfile (`locustfile_staged.py`) holds a
`LoadTestShape` that reads its stages from the `--stages` Locust option and records when it starts each one, so
the result holds each stage's own figures (`loadtest.stage_figures`) beside the window's blended ones; the user's own
`LoadTestShape` (`--shape`) is measured the same way (`loadtest.user_shape`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Protocol

from loadtest.arrival_trace import ArrivalTrace, read_trace
from loadtest.trace_plan import whole_pass_seconds
from quantserve.errors import QuantserveError

ARRIVALS = ("constant", "poisson")


def rate_arrivals(
    rate: float, arrivals: str, rng: random.Random, share: int = 0, shares: int = 1, lead: float = 0.0
) -> Iterator[float]:
    """Seconds from the schedule's start, `lead` s after the window's, of one user's arrivals at `rate` a second (its
    share of the run's): Poisson gaps, or constant ones placed at (k + share/shares) / rate from the window's start,
    k = 0, 1, …, so the `shares` users' arrivals interleave evenly at the run's rate and a window of T s offers
    rate × T of them. Those due within the lead arrive at its end. The constant schedule began one gap in and summed
    its gaps: each user offered one arrival short (59995 of 60000 at 3000 req/s over 20 s, five users), all users at
    the same instants (bursts of five); counted from the schedule's start, rate × lead were lost (14997 of 15000 at
    3000 req/s over 5 s)."""
    if arrivals == "poisson":
        offset = 0.0
        while True:
            offset += rng.expovariate(rate)
            yield max(0.0, offset - lead)
    phase = (share % max(1, shares)) / max(1, shares)
    for k in itertools.count():
        yield max(0.0, (k + phase) / rate - lead)


class LoadStep(Protocol):
    """One measured step: one Locust run of a load that its locustfile and options describe.

    A new kind of load (a step or spike shape) is one more class with these members.
    """

    @property
    def mode(self) -> str: ...  # recorded in each result ("closed", "open")

    @property
    def locustfile(self) -> str: ...  # file name inside `loadtest/`

    @property
    def name(self) -> str: ...  # the step's part of file and folder names

    def check(self) -> None: ...

    def locust_users(self, workers: int) -> int: ...

    def locust_spawn_rate(self, workers: int) -> float: ...

    def locust_options(self) -> list[str]: ...

    def recorded(self, workers: int) -> dict[str, Any]: ...  # the `LoadResult` fields that describe the load

    def run_seconds(self, duration_s: float) -> float: ...  # how long its Locust run lasts

    def locust_run_flags(self, workers: int, duration_s: float) -> list[str]: ...  # users, spawn rate, run time


def _steady_run_flags(users: int, spawn_rate: float, duration_s: float) -> list[str]:
    """A steady load: all users spawned, then `duration_s` measured; Locust's stats restart at spawn end."""
    # --window-time (`loadtest.recording`), not Locust's -t, which counts the ramp in the run: the window opens when
    # all users are spawned and lasts `duration_s` from there. --reset-stats: Locust's own CSVs start then too.
    # Whole seconds, as --duration is everywhere (`parse_duration`); `:.0f`, as `:g` would write 1000000 as 1e+06.
    whole_seconds(duration_s, f"{duration_s:g}s", "--duration")
    return ["-u", str(users), "-r", f"{spawn_rate:g}", "--window-time", f"{duration_s:.0f}", "--reset-stats"]


@dataclass(frozen=True)
class ClosedLoop:
    """`users` users, each sending its next request when the previous answer arrives (Locust's own model)."""

    users: int
    spawn_rate: float | None = None  # users started per second; default: all within one second

    mode: ClassVar[str] = "closed"
    locustfile: ClassVar[str] = "locustfile.py"

    @property
    def name(self) -> str:
        """The step's part of file and folder names: `u16`."""
        return f"u{self.users}"

    def check(self) -> None:
        """Reject an impossible pattern in one line, naming the CLI flag."""
        if self.users < 1:
            raise QuantserveError(f"--users must be at least 1, got {self.users}")
        # NaN passed `<= 0` and ended in Locust's usage error after the start; 0 meant "all at once" in silence
        if self.spawn_rate is not None and not (math.isfinite(self.spawn_rate) and self.spawn_rate > 0):
            raise QuantserveError(
                f"--spawn-rate must be positive and finite (users started per second), got {self.spawn_rate:g}"
            )

    def steps(self) -> tuple[LoadStep, ...]:
        return (self,)

    def locust_users(self, workers: int) -> int:
        """How many Locust users to spawn (over all worker processes)."""
        return self.users

    def locust_spawn_rate(self, workers: int) -> float:
        return self.spawn_rate or self.users

    def locust_options(self) -> list[str]:
        """The quantserve options this step adds to the Locust command line."""
        return []

    def recorded(self, workers: int) -> dict[str, Any]:
        """How the step is described in its `LoadResult`."""
        return {"mode": self.mode, "users": self.users, "rate_rps": None, "arrivals": None}

    def run_seconds(self, duration_s: float) -> float:
        return duration_s

    def locust_run_flags(self, workers: int, duration_s: float) -> list[str]:
        return _steady_run_flags(self.locust_users(workers), self.locust_spawn_rate(workers), duration_s)


class _ArrivalGenerators:
    """What open-loop steps share: one arrival generator per Locust process, a steady measured window."""

    mode: ClassVar[str] = "open"
    locustfile: ClassVar[str] = "locustfile_open_loop.py"

    def locust_users(self, workers: int) -> int:
        """One arrival generator per process: the rate (or the trace's arrivals) is split between them."""
        return max(1, workers)

    def locust_spawn_rate(self, workers: int) -> float:
        return self.locust_users(workers)

    def run_seconds(self, duration_s: float) -> float:
        return duration_s

    def locust_run_flags(self, workers: int, duration_s: float) -> list[str]:
        return _steady_run_flags(self.locust_users(workers), self.locust_spawn_rate(workers), duration_s)


@dataclass(frozen=True)
class OpenLoop(_ArrivalGenerators):
    """Requests arrive at `rate` per second — evenly spaced or as a Poisson process — whether or not
    earlier ones have returned; one Locust user per worker process carries its share of the rate."""

    rate: float
    arrivals: str = "constant"

    @property
    def name(self) -> str:
        """The step's part of file and folder names: `rate50-poisson`."""
        return f"rate{self.rate:g}-{self.arrivals}"

    def check(self) -> None:
        """Reject an impossible pattern in one line, naming the CLI flag."""
        if self.rate <= 0:
            raise QuantserveError(f"--rate must be positive, got {self.rate:g}")
        if self.arrivals not in ARRIVALS:
            raise QuantserveError(f"--arrivals must be {' or '.join(ARRIVALS)}, got '{self.arrivals}'")

    def steps(self) -> tuple[LoadStep, ...]:
        return (self,)

    def locust_options(self) -> list[str]:
        return ["--rate", f"{self.rate:g}", "--arrivals", self.arrivals]

    def recorded(self, workers: int) -> dict[str, Any]:
        """How the step is described in its `LoadResult` (users: the arrival generators Locust ran)."""
        return {
            "mode": self.mode,
            "users": self.locust_users(workers),
            "rate_rps": self.rate,
            "arrivals": self.arrivals,
        }


@dataclass(frozen=True)
class TraceReplay(_ArrivalGenerators):
    """Open loop on recorded arrivals (`loadtest.arrival_trace`): a trace's bursts and lulls, looped for the
    window, its time divided by `speed`. Latency counts from each arrival's time, as in `OpenLoop`."""

    path: str
    speed: float = 1.0
    scale: float = 1.0  # a share of the trace's arrivals (`read_trace`): a production trace made to fit one server
    pass_s: float = 0.0  # the pass made at least this long, idle after its arrivals (`ArrivalTrace.padded_to`)

    @cached_property
    def trace(self) -> ArrivalTrace:
        return read_trace(self.path, self.speed, self.scale).padded_to(self.pass_s)

    def once(self) -> TraceReplay:
        """This replay with its pass padded to whole seconds: a run that long (`--duration`'s default) plays every
        arrival once, and none of the next pass (`ArrivalTrace.padded_to`)."""
        padded = replace(self, pass_s=float(whole_pass_seconds(self.trace.recorded_period_s)))
        # the trace already read, padded: a new instance's `trace` would read the file again (2 M rows take seconds)
        vars(padded)["trace"] = self.trace.padded_to(padded.pass_s)
        return padded

    @property
    def name(self) -> str:
        """The step's part of file and folder names: `trace-morning`, `trace-morning-x2` or `trace-morning-s0.01`."""
        return (
            f"trace-{Path(self.path).stem}"
            + (f"-x{self.speed:g}" if self.speed != 1 else "")
            + (f"-s{self.scale:g}" if self.scale != 1 else "")
        )

    def check(self) -> None:
        """Read the trace: a missing, empty or malformed file is one line naming it and the line at fault."""
        _ = self.trace

    def steps(self) -> tuple[LoadStep, ...]:
        return (self,)

    def locust_options(self) -> list[str]:
        return [
            "--trace",
            str(Path(self.path).resolve()),
            "--trace-speed",
            f"{self.speed!r}",
            "--trace-scale",
            f"{self.scale!r}",
            "--trace-pass-s",
            f"{self.pass_s!r}",
        ]

    def recorded(self, workers: int) -> dict[str, Any]:
        """Recorded with the trace's mean rate as replayed (offered rate), and what the trace is."""
        return {
            "mode": self.mode,
            "users": self.locust_users(workers),
            "rate_rps": round(self.trace.mean_rate_rps, 3),
            "arrivals": "trace",
            "trace": self.trace.summary(self.speed, self.scale),
        }


@dataclass(frozen=True)
class Staged:
    """Closed-loop users whose number changes inside one measured window: `((4, 20), (32, 5), (4, 20))` is
    a spike from 4 to 32 users for 5 s; `((4, 20), (16, 20))` a step. Locust's own `LoadTestShape`
    drives it, so the stages decide the run time (the `--duration` flag does not apply)."""

    stages: tuple[tuple[int, float], ...]  # (users, seconds), in order

    mode: ClassVar[str] = "staged"
    locustfile: ClassVar[str] = "locustfile_staged.py"

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple((int(u), float(s)) for u, s in self.stages))

    @property
    def name(self) -> str:
        """The step's part of file and folder names: `staged-u4x20s-u32x5s-u4x20s`."""
        return "staged-" + "-".join(f"u{users}x{seconds:g}s" for users, seconds in self.stages)

    @property
    def peak_users(self) -> int:
        return max(users for users, _ in self.stages)

    def check(self) -> None:
        """Reject an impossible shape in one line, naming the CLI flag."""
        if not self.stages:
            raise QuantserveError("--stages needs at least one USERS:DURATION stage")
        for users, seconds in self.stages:
            if users < 1 or seconds <= 0:
                raise QuantserveError(f"--stages: a stage needs users >= 1 and seconds > 0, got {users}:{seconds:g}s")
            whole_stage(users, seconds)

    def steps(self) -> tuple[LoadStep, ...]:
        return (self,)

    def locust_users(self, workers: int) -> int:
        return self.peak_users

    def locust_spawn_rate(self, workers: int) -> float:
        return self.peak_users  # a jump to any stage completes within one second

    def locust_options(self) -> list[str]:
        return ["--stages", ",".join(f"{users}:{seconds:g}" for users, seconds in self.stages)]

    def recorded(self, workers: int) -> dict[str, Any]:
        """Recorded with its peak user count; each stage's figures are in the result's `stages`."""
        return {"mode": self.mode, "users": self.peak_users, "rate_rps": None, "arrivals": None}

    def run_seconds(self, duration_s: float) -> float:
        return sum(seconds for _, seconds in self.stages)

    def locust_run_flags(self, workers: int, duration_s: float) -> list[str]:
        """None: the shape sets users and run time (Locust warns that -u/-r/-t would be ignored), and stats
        are not reset at each stage's spawn end."""
        return []


@dataclass(frozen=True)
class Sweep:
    """Measured steps run in order (all closed loop or all open loop), saved together as one run."""

    load_steps: tuple[LoadStep, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "load_steps", tuple(self.load_steps))

    @classmethod
    def of_users(cls, counts: Sequence[int], spawn_rate: float | None = None) -> Sweep:
        """A closed-loop concurrency sweep: one step per user count."""
        return cls(tuple(ClosedLoop(users, spawn_rate) for users in counts))

    @classmethod
    def of_rates(cls, rates: Sequence[float], arrivals: str = "constant") -> Sweep:
        """An open-loop sweep: one step per offered rate."""
        return cls(tuple(OpenLoop(rate, arrivals) for rate in rates))

    def check(self) -> None:
        """Every step valid, at least one, and one loop kind (closed and open results are filed apart)."""
        if not self.load_steps:
            raise QuantserveError("a load sweep needs at least one step")
        if len({step.mode for step in self.load_steps}) > 1:
            raise QuantserveError("a load sweep is all closed-loop steps or all open-loop steps, not both")
        for step in self.load_steps:
            step.check()

    def steps(self) -> tuple[LoadStep, ...]:
        return self.load_steps


class LoadPattern(Protocol):
    """What the harness runs: every step, in order (a `ClosedLoop`, an `OpenLoop`, a `Sweep`, or a new shape)."""

    def check(self) -> None: ...

    def steps(self) -> tuple[LoadStep, ...]: ...


def whole_stage(users: int, seconds: float) -> float:
    """`seconds` if whole; else one line naming the stage and the next whole second. The staged shape's `tick`
    (`locustfile_staged.py`) runs once a second: 0.5 s stages were dropped and the report claimed their users."""
    if seconds != math.floor(seconds):
        raise QuantserveError(
            f"--stages {users}:{seconds:g}s: the staged shape changes users once a second; "
            f"use {users}:{math.ceil(seconds)}s"
        )
    return seconds


def whole_seconds(seconds: float, text: str, flag: str) -> float:
    """`seconds` if whole; else one line naming the flag and the next whole second."""
    if seconds != math.floor(seconds):
        raise QuantserveError(f"{flag} {text}: Locust runs whole seconds; use {math.ceil(seconds)}s")
    return seconds
