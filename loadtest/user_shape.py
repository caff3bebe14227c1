"""The user's own Locust `LoadTestShape` (`--shape FILE.py[:Class]`) driving the closed-loop Triton users: every
change of the user count its `tick()` asks for starts a stage, measured apart as `--stages`' are
(`loadtest.stage_figures`); the run ends when `tick()` returns None, or at its cap (`--duration`, else
DEFAULT_CAP_S), noted.

The file is read before any server work, in a child process (importing `locust` monkey-patches the interpreter with
gevent): a missing file, no shape class or several, an import that raises, and a `tick()` that raises or answers
something else than (users, spawn_rate) or None in a dry run are each refused in one line, as are a shape at 0 users
throughout and a stage whose users its spawn rate cannot all start or stop within it (`UserShape._check_ramps`). The dry
run calls `tick()` once a simulated second, as Locust's runner does, its `get_run_time()` the simulated clock and a
stand-in runner at the users last asked for (`get_current_user_count()`): its plan is printed, and the result records
the stages as they ran (`UserShape.as_ran`). In the run itself (`locustfile_user_shape.py`) a `tick()` that raises ends
the run with the figures so far and a note naming the exception: Locust alone logged it as an unhandled greenlet
exception and exited with code 2, and the harness kept nothing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

from loadtest.load_pattern import LoadStep
from quantserve.errors import QuantserveError

DEFAULT_CAP_S = 3600.0  # without --duration, a shape whose tick() never returns None stops here, noted
PROBE_TIMEOUT_S = 60.0
PLAN_MARK = "quantserve-shape-plan: "  # the probe's answer, among what the user's file may print


@dataclass(frozen=True)
class ShapePlan:
    """The shape's dry run: its class and its stages as (users, seconds); `ended` False where it reached the cap;
    `spawn_rates` each stage's spawn rate, as its first tick asked (Locust starts the stage's ramp then)."""

    class_name: str
    stages: tuple[tuple[int, float], ...]
    ended: bool
    spawn_rates: tuple[float, ...] = field(default=(), compare=False)  # a plan is its stages

    @property
    def peak_users(self) -> int:
        return max((users for users, _ in self.stages), default=0)

    def line(self, source: str, cap_s: float) -> str:
        """`shape StepShape (steps.py): 3 stages planned, 1, 4 and 2 users; 6 s in all`."""
        users = [str(u) for u, _ in self.stages]
        listed = users[0] if len(users) == 1 else ", ".join(users[:-1]) + f" and {users[-1]}"
        stages = f"{len(self.stages)} stage{'s' if len(self.stages) != 1 else ''} planned, {listed} users"
        total = sum(seconds for _, seconds in self.stages)
        end = f"{total:g} s in all" if self.ended else f"not ended within its {cap_s:g} s cap: the run stops there"
        return f"shape {self.class_name} ({Path(source).name}): {stages}; {end}"


@dataclass(frozen=True)
class UserShape:
    """Closed-loop users whose number the user's `LoadTestShape` sets, second by second, inside one window."""

    path: str
    class_name: str = ""  # "": the one shape class the file defines
    cap_s: float = DEFAULT_CAP_S  # --duration, else DEFAULT_CAP_S

    mode: ClassVar[str] = "staged"
    locustfile: ClassVar[str] = "locustfile_user_shape.py"

    @property
    def flag(self) -> str:
        """`--shape FILE.py:Class` as given."""
        return f"--shape {self.path}{':' + self.class_name if self.class_name else ''}"

    @cached_property
    def plan(self) -> ShapePlan:
        return plan_shape(self.path, self.class_name, self.cap_s)

    @property
    def name(self) -> str:
        """The step's part of file and folder names: `shape-steps-StepShape`."""
        return f"shape-{Path(self.path).stem}-{self.plan.class_name}"

    def check(self) -> None:
        """Read the file and dry-run its shape: each mistake one line naming --shape (`plan_shape`)."""
        if not self.plan.stages:
            raise QuantserveError(f"{self.flag}: {self.plan.class_name}.tick() returned None at once, no stage")
        if not self.plan.peak_users:
            # session 45: `(0, 100)` for 5 s ran 5 s, then exited 1 on "no request completed", the cause unnamed, while
            # --stages refuses a 0-user stage up front. The dry run covers the whole run (to the cap where it never
            # ends), so a shape at 0 users throughout it would send nothing
            total = sum(seconds for _, seconds in self.plan.stages)
            within = f" its {total:g} s" if self.plan.ended else f" its {self.cap_s:g} s cap"
            raise QuantserveError(
                f"{self.flag}: {self.plan.class_name}.tick() asks 0 users throughout{within}: no request would be "
                "sent, nothing measured"
            )

        self._check_ramps()

    def _check_ramps(self) -> None:
        """Refuse a stage whose users cannot all start (or stop) within it at its spawn rate: Locust ramps from the
        users before at that rate, both ways, and the measured window opens only once all users of the first stage
        are spawned and warm (`recording.open_window`, by design: a ramp is not a load), so such a stage is at best
        half measured and its row's users were never all running. Session 45: `(16, 2)` for 5 s then `(4, 100)`
        for 5 s showed stage 1 as "16 users | 0.0 of 5 | 0 requests" (the window opened at stage 2's spawn), while
        up to 10 users had 9400 requests answered in it; `(16, 2)` alone exited 2 on "did any user start?". Refused
        before the run rather than reported after it: the dry run knows each stage's users, length and rate, and a
        row named with the users it reached would still blend a ramp into a stage's figures."""
        before = 0
        for number, ((users, seconds), rate) in enumerate(zip(self.plan.stages, self.plan.spawn_rates, strict=True), 1):
            change = abs(users - before)
            if change and change / rate >= seconds:
                verb = "starting" if users > before else "stopping"
                raise QuantserveError(
                    f"{self.flag}: stage {number} ({users} users for {seconds:g} s) asks spawn rate {rate:g}/s: "
                    f"{verb} {change} users takes {change / rate:g} s, the stage's whole length or more, so it would "
                    f"never run at its {users} users; use a spawn rate above {change / seconds:g}/s or a longer stage"
                )
            before = users

    def steps(self) -> tuple[LoadStep, ...]:
        return (self,)

    def locust_users(self, workers: int) -> int:
        return max(1, self.plan.peak_users)

    def locust_spawn_rate(self, workers: int) -> float:
        return self.locust_users(workers)

    def locust_options(self) -> list[str]:
        return ["--user-shape", f"{Path(self.path).resolve()}:{self.plan.class_name}"]

    def recorded(self, workers: int) -> dict[str, Any]:
        """Recorded with the peak of its dry run, until the stages that ran say otherwise (`as_ran`)."""
        return {"mode": self.mode, "users": self.plan.peak_users, "rate_rps": None, "arrivals": None}

    def as_ran(self, stages: list[Any]) -> int:
        """The peak users of the stages that ran (`StageFigures`), the last one noted where fewer ran than planned.
        The dry run ticks on whole seconds; Locust's ticks come a few ms late: Locust's StepLoadShape (`run_time > 9`
        → None, 2/4/6/8 users) ran 3 stages where 4 were planned, and the result claimed 8 users. A run stopped from
        outside (its last stage with no end recorded) shows the planned stages instead (`_stopped_from_outside`)."""
        if not stages:
            return self.plan.peak_users
        planned = self.plan.stages
        if not stages[-1].planned_s and not stages[-1].note:  # no end recorded: stopped from outside
            self._stopped_from_outside(stages)
        elif len(stages) < len(planned) and not stages[-1].note:
            unran = ", ".join(str(users) for users, _ in planned[len(stages) :])
            stages[-1].note = (
                f"{len(stages)} of the {len(planned)} stages its dry run planned ran; the shape ended before the "
                f"stage{'s' if len(planned) - len(stages) > 1 else ''} of {unran} users (its clock, read a few ms "
                "after each whole second, passed an end its dry run met on the second)"
            )
        return max(stage.users for stage in stages)

    def _stopped_from_outside(self, stages: list[Any]) -> None:
        """Stages the shape's end never closed (the model stopped being served, an interrupt): its dry run's count
        and lengths, as --stages shows a cut run ("1/3", "4.0 of 8"), not "2/2" and "0.1 of 0" beside a note
        blaming the shape's clock; the stages never reached named on the last. A stage whose users the dry run did
        not plan there (a shape that reads the runner) keeps the length it ran."""
        planned = self.plan.stages
        for stage in stages:
            stage.stages = max(len(planned), len(stages))
            if stage.number <= len(planned) and planned[stage.number - 1][0] == stage.users:
                stage.planned_s = planned[stage.number - 1][1]
        if len(stages) < len(planned):
            unran = ", ".join(str(users) for users, _ in planned[len(stages) :])
            stages[-1].note = (
                f"the run was stopped in this stage, by what the notes above say, not by the shape: the "
                f"stage{'s' if len(planned) - len(stages) > 1 else ''} of {unran} users its dry run planned never ran"
            )

    def run_seconds(self, duration_s: float) -> float:
        return self.cap_s

    def locust_run_flags(self, workers: int, duration_s: float) -> list[str]:
        """The cap only: the shape sets users, spawn rate and its end."""
        return ["--user-shape-cap", f"{self.cap_s:g}"]  # `:.0f` made --duration 2.5s a 2 s cap


def split_shape(text: str) -> tuple[str, str]:
    """`FILE.py:Class` → (FILE.py, Class); `FILE.py` → (FILE.py, "")."""
    path, colon, name = text.rpartition(":")
    if colon and name.isidentifier():
        return path, name
    return text, ""


def plan_shape(path: str, class_name: str, cap_s: float) -> ShapePlan:
    """The shape's dry run, in a child process (`probe`); its refusal, if any, as one line naming --shape."""
    where = f"--shape {path}{':' + class_name if class_name else ''}"
    if not path.endswith(".py"):
        raise QuantserveError(f"{where}: a shape is a Python file (FILE.py or FILE.py:Class)")
    if not Path(path).is_file():
        raise QuantserveError(f"{where}: no such file")
    try:
        told = _run_probe(path, class_name, cap_s)
    except QuantserveError as exc:
        raise QuantserveError(f"{where}: {exc}") from None
    stages = tuple((int(users), float(seconds)) for users, seconds, _ in told["stages"])
    rates = tuple(float(rate) for _, _, rate in told["stages"])
    return ShapePlan(told["class_name"], stages, bool(told["ended"]), rates)


def _run_probe(path: str, class_name: str, cap_s: float) -> dict[str, Any]:
    """`probe`'s answer from a child process; its refusal, a crash or a hang as a QuantserveError."""
    command = [sys.executable, "-c", "import sys; from loadtest.user_shape import probe; probe(sys.argv[1:])"]
    command += [str(Path(path).resolve()), class_name, f"{cap_s!r}"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=_env(), stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise QuantserveError(f"importing it and dry-running tick() took over {PROBE_TIMEOUT_S:g} s") from None
    lines = done.stdout.splitlines() if done.returncode == 0 else []
    answer = [line.split(PLAN_MARK, 1)[1] for line in lines if PLAN_MARK in line][-1:]  # the file may print too
    if not answer:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise QuantserveError(f"the dry run failed (exit {done.returncode}): {tail}")
    told: dict[str, Any] = json.loads(answer[0])
    if "error" in told:
        raise QuantserveError(str(told["error"]))
    return told


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)  # the probe imports `loadtest`, installed or not
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def probe(argv: list[str]) -> None:
    """Child process: print the dry run of `argv` (path, class name or "", cap seconds) as one JSON line, or the
    refusal as {"error": ...}."""
    path, class_name, cap_s = argv[0], argv[1], float(argv[2])
    try:
        shape = new_shape(load_shape(path, class_name))
        told: dict[str, Any] = {"class_name": type(shape).__name__, **dry_run(shape, cap_s)}
    except QuantserveError as exc:
        told = {"error": str(exc)}
    print(f"\n{PLAN_MARK}{json.dumps(told)}", flush=True)


def load_shape(path: str, class_name: str) -> type:
    """The shape class `class_name` of the file at `path` (the only one, where ""), found as Locust finds shape
    classes (a `LoadTestShape` subclass not marked abstract); each mistake one QuantserveError line."""
    module = _import(path)
    found = [value for value in vars(module).values() if _is_shape_class(value)]
    names = [value.__name__ for value in found]
    if class_name:
        if class_name not in names:
            defined = f"its shape classes: {', '.join(names)}" if names else "it defines no LoadTestShape subclass"
            raise QuantserveError(f"no shape class {class_name} in the file ({defined})")
        return found[names.index(class_name)]
    if not found:
        classes = [name for name, value in vars(module).items() if _defined_in(value, module)]
        defined = f"it defines {', '.join(classes)}" if classes else "it defines no class"
        raise QuantserveError(f"no LoadTestShape subclass ({defined})")
    if len(found) > 1:
        raise QuantserveError(f"it defines {len(found)} shape classes ({', '.join(names)}): name one, FILE.py:Class")
    return found[0]


def new_shape(shape_class: type) -> Any:
    """An instance of the user's shape class; what its constructor raises, one line."""
    try:
        return shape_class()
    except Exception as exc:  # the user's code (or a class with no tick(): abstract)
        raise QuantserveError(f"{shape_class.__name__}() raised {_one_line(exc)}") from None


def _import(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"quantserve_user_shape_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise QuantserveError("not importable as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any exception is theirs to read, in one line
        raise QuantserveError(f"importing it raised {_one_line(exc)}") from None
    return module


def _is_shape_class(value: Any) -> bool:
    from locust import LoadTestShape

    return isinstance(value, type) and issubclass(value, LoadTestShape) and not getattr(value, "abstract", True)


def _defined_in(value: Any, module: Any) -> bool:
    """A class the file itself defines (not one it imports)."""
    return isinstance(value, type) and value.__module__ == module.__name__


def dry_run(shape: Any, cap_s: float) -> dict[str, Any]:
    """`tick()` once a simulated second from 0 until it returns None or the cap: the stages, as (users, seconds,
    spawn rate of its first tick)."""
    clock = [0.0]
    shape.get_run_time = lambda: clock[0]
    # a stand-in runner at the users last asked for: Locust's own get_current_user_count() reads runner.user_count,
    # and a shape using it was refused (`'NoneType' object has no attribute 'user_count'`)
    shape.runner = SimpleNamespace(user_count=0, environment=SimpleNamespace(parsed_options=None))
    stages: list[list[float]] = []
    for second in range(math.ceil(cap_s)):
        clock[0] = float(second)
        asked = checked_tick(shape, second)
        if asked is None:
            return {"stages": stages, "ended": True}
        shape.runner.user_count = asked[0]
        if not stages or stages[-1][0] != asked[0]:
            stages.append([asked[0], 0.0, asked[1]])
        stages[-1][1] += 1.0
    return {"stages": stages, "ended": False}


def checked_tick(shape: Any, second: float) -> tuple[int, float] | None:
    """`shape.tick()` as (users, spawn rate) or None; what it raises, or an answer of another kind, one line."""
    try:
        asked = shape.tick()
    except Exception as exc:  # the user's code
        raise QuantserveError(f"{type(shape).__name__}.tick() at {second:g} s raised {_one_line(exc)}") from None
    if asked is None:
        return None
    try:
        users, rate = int(asked[0]), float(asked[1])
    except (TypeError, ValueError, IndexError):
        users, rate = -1, math.nan
    if users < 0 or not (math.isfinite(rate) and rate > 0) or users != asked[0]:
        raise QuantserveError(
            f"{type(shape).__name__}.tick() at {second:g} s returned {asked!r}, not (users, spawn_rate > 0) or None"
        )
    return users, rate


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
