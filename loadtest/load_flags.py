"""The CLI's load flags (`--users/--sweep/--rate/--arrivals/--spawn-rate/--stages/--shape/--trace/--soak`, `--duration`)
parsed into one load pattern (`loadtest.load_pattern`), every mistake refused in one line naming the flag before
any work starts.
"""

from __future__ import annotations

import math
import re

from loadtest.load_pattern import (
    ClosedLoop,
    LoadPattern,
    OpenLoop,
    Staged,
    Sweep,
    TraceReplay,
    whole_seconds,
    whole_stage,
)
from loadtest.user_shape import DEFAULT_CAP_S, UserShape, split_shape
from quantserve.errors import QuantserveError


def shape_from_flags(
    shape: str, duration: str, others: dict[str, str], users: int | None = None, spawn_rate: float | None = None
) -> UserShape:
    """`--shape FILE.py[:Class]`, capped by `--duration` (DEFAULT_CAP_S without it); any flag given in `others`
    (`--stages`, `--trace`, `--rate`, `--sweep`), `--users` or `--spawn-rate` (None: not given) refused: the shape
    sets the users."""
    given = {"--users": users, "--spawn-rate": spawn_rate}
    others = {**others, **{flag: f"{value:g}" for flag, value in given.items() if value is not None}}
    refuse_mixed_loads({"--shape": shape, **others})
    path, class_name = split_shape(shape)
    return UserShape(path, class_name, parse_duration(duration) if duration else DEFAULT_CAP_S)


def pattern_from_flags(
    users: int,
    sweep: str = "",
    rate: str = "",
    arrivals: str = "constant",
    spawn_rate: float | None = None,
    stages: str = "",
    trace: str = "",
    trace_speed: float = 1.0,
    trace_scale: float = 1.0,
    duration: str = "",
) -> LoadPattern:
    """The CLI's `--users/--sweep/--rate/--arrivals/--spawn-rate/--stages/--trace` as one pattern.

    One load shape per run: `--trace`, `--stages`, `--rate` (open loop; a list sweeps) and `--sweep` exclude
    each other (`refuse_mixed_loads`); with none of them, `--users` in a closed loop. `--stages` sets the run's
    length, so a `--duration` given beside it is refused (it was ignored in silence: `4:20s --duration 10s` ran 20 s).
    """
    refuse_mixed_loads({"--trace": trace, "--stages": stages, "--rate": rate, "--sweep": sweep})
    refuse_mixed_loads({"--stages": stages, "--duration": duration})
    shape = next((flag for flag, value in (("--trace", trace), ("--stages", stages), ("--rate", rate)) if value), "")
    if shape and spawn_rate is not None:  # was ignored in silence: 8 stage users all started at once
        raise QuantserveError(
            f"{shape} {LOAD_SHAPES[shape]}; drop --spawn-rate (it ramps a closed loop's users: --users or --sweep)"
        )
    if trace:
        return TraceReplay(trace, trace_speed, trace_scale)
    if stages:
        return Staged(parse_stages(stages))
    if rate:
        rates = parse_rates(rate)
        return OpenLoop(rates[0], arrivals) if len(rates) == 1 else Sweep.of_rates(rates, arrivals)
    if sweep:
        return Sweep.of_users(parse_concurrencies(sweep), spawn_rate)
    return ClosedLoop(users, spawn_rate)


# each load shape and why it excludes the others (before: all but the first given were dropped in silence)
LOAD_SHAPES = {
    "--soak": "runs one closed loop of --users for its own length",
    "--shape": "sets its own users (its tick())",
    "--trace": "replays the file's own arrivals",
    "--stages": "sets its own users and run time",
    "--rate": "runs an open loop (a list of rates sweeps)",
    "--sweep": "runs a closed-loop sweep",
}


def refuse_mixed_loads(given: dict[str, str]) -> None:
    """One line naming the first load-shape flag given (in `given`'s order, the first a `LOAD_SHAPES` key) and every
    other flag given, to drop."""
    flags = [flag for flag, value in given.items() if value]
    if len(flags) > 1:
        raise QuantserveError(f"{flags[0]} {LOAD_SHAPES[flags[0]]}; drop {' and '.join(flags[1:])}")


def soak_from_flags(
    soak: str, users: int, spawn_rate: float | None, others: dict[str, str]
) -> tuple[ClosedLoop, float]:
    """`--soak`'s closed loop and its length in seconds; any flag given in `others` (`--rate`, `--trace`,
    `--stages`, `--sweep`, `--duration`: the soak sets shape and length) is refused, naming both."""
    refuse_mixed_loads({"--soak": soak, **others})
    ClosedLoop(users, spawn_rate).check()
    try:
        seconds = parse_seconds(soak)
    except QuantserveError:
        raise QuantserveError(f"--soak '{soak}' is not like 10m, 1h or 90s") from None
    if seconds <= 0:
        raise QuantserveError(f"--soak must be positive, got {soak}")
    return ClosedLoop(users, spawn_rate), whole_seconds(seconds, soak, "--soak")


def parse_rates(text: str) -> list[float]:
    """ "50,100,200" → [50.0, 100.0, 200.0] requests per second; each positive and finite (NaN passed `<= 0`)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise QuantserveError(f"--rate '{text}' is not a comma-separated list of requests per second") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise QuantserveError(f"--rate '{text}' needs finite rates above 0")
    refuse_repeats("--rate", text, [f"{v:g}" for v in values])  # the names its files are saved under
    return values


def parse_concurrencies(text: str) -> list[int]:
    """ "1,2,4,8,16" → [1, 2, 4, 8, 16]; each a positive integer."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise QuantserveError(f"--sweep '{text}' is not a comma-separated list of user counts") from None
    if not values or min(values) < 1:
        raise QuantserveError(f"--sweep '{text}' needs user counts of at least 1")
    refuse_repeats("--sweep", text, [str(v) for v in values])
    return values


def refuse_repeats(flag: str, text: str, names: list[str]) -> None:
    """A step given twice would save its raw latencies and Locust CSVs over the first's (they are filed by it)."""
    repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
    if repeated:
        raise QuantserveError(
            f"{flag} '{text}' repeats {', '.join(repeated)}: each step's files are named by its value; give each once"
        )


def parse_stages(text: str) -> tuple[tuple[int, float], ...]:
    """ "4:20s,32:5s,4:20s" → ((4, 20.0), (32, 5.0), (4, 20.0)): users and duration per stage."""
    stages = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        users, _, duration = part.partition(":")
        if not users.strip().isdigit() or not duration:
            raise QuantserveError(f"--stages '{text}': each stage is USERS:DURATION like 32:5s, got '{part}'")
        stages.append((int(users), whole_stage(int(users), parse_seconds(duration))))
    if not stages:
        raise QuantserveError(f"--stages '{text}' has no USERS:DURATION stage")
    return tuple(stages)


def parse_duration(text: str, flag: str = "--duration") -> float:
    """A Locust run time (`flag`): "60s", "2m", "1h30m" or a bare number → whole seconds, checked before any work
    (Locust's -t/--run-time refuses a fraction, after a run had begun and evaluate had saved its accuracy)."""
    try:
        seconds = parse_seconds(text)
    except QuantserveError as exc:
        raise QuantserveError(f"{flag}: {exc}") from None
    return whole_seconds(seconds, text, flag)


def parse_seconds(text: str) -> float:
    """ "60s", "2m", "1h30m", "2.5s" or a bare number of seconds → seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or parts is None or not any(parts.groups()):
        raise QuantserveError(f"duration '{text}' is not like 60s, 2m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    return hours * 3600 + minutes * 60 + seconds
