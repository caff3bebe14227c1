"""What `quantserve loadtest` settles before any load: the load flags as one pattern (a load shape refusing the flags
it cannot use where the command line gives them, leaving unused those the environment or a config file set), and
what is refused or said for every model at once before the first one's run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from quantserve.cli.option_sources import given_by_source
from quantserve.errors import QuantserveError

# where not given (None on the namespace: not given, so that a load shape refuses only what was)
DEFAULT_USERS = 16  # --users (--shape needs to know)
DEFAULT_ARRIVALS = "constant"  # --arrivals
DEFAULT_REQUEST_BATCH = 1  # --request-batch, where no replayed trace sets each request's samples
DEFAULT_MAX_IN_FLIGHT = 64  # --max-in-flight, an open loop's (--rate, --trace)


def before_load(every: list[Any], files: list[str], args: argparse.Namespace) -> None:
    """What is refused or said before any load, for every model at once: a run that would replace a results file
    (`files`, one per settings: `refuse_replacing`) or clear a soak's records (`refuse_load_over_soak`), a model not
    ready; then each note once, a large --data file's sample of requests and more --workers than this process's
    cores (once a run, not once a step)."""
    from loadtest.harness import check_ready
    from loadtest.recording_files import refuse_replacing
    from loadtest.soak import refuse_load_over_soak
    from loadtest.window_notes import workers_note
    from serving.machine import cpu_facts

    runs = [(settings.label, file) for settings, file in zip(every, files, strict=True)]
    refuse_replacing(Path(args.out), runs)
    refuse_load_over_soak(Path(args.out), runs)
    notes: list[str | None] = [note for settings in every for note in check_ready(settings)]
    notes.append(workers_note(args.workers, cpu_facts().usable_cores))
    for note in dict.fromkeys(note for note in notes if note):
        print(f"note: {note}", file=sys.stderr if args.json else sys.stdout, flush=True)


# each load shape's flags it has no use for: given on the command line, the shape's own check refuses them; set by the
# environment or a config file (defaults for other runs), they are left unused, in a note (`set_aside_unused`)
SOAK_SETS = {"--rate": "rate", "--trace": "trace", "--stages": "stages", "--sweep": "sweep", "--shape": "shape"}
SOAK_SETS |= {"--duration": "duration"}
SHAPE_SETS = {"--stages": "stages", "--trace": "trace", "--rate": "rate", "--sweep": "sweep"}
SHAPE_SETS |= {"--users": "users", "--spawn-rate": "spawn_rate"}
CANNOT_USE = {"--soak": SOAK_SETS, "--shape": SHAPE_SETS}
CANNOT_USE |= {flag: {"--spawn-rate": "spawn_rate", "--users": "users"} for flag in ("--trace", "--stages", "--rate")}
CANNOT_USE["--stages"] |= {"--duration": "duration"}  # its stages are the run's length
CANNOT_USE["--sweep"] = {"--users": "users"}  # its list is the users (session 31: `--sweep 1,2 --users 32` ran 1, 2)
# flags of some load shapes alone, unused by every other (session 31: `--arrivals poisson` in a closed loop and
# `--trace-speed 2` without --trace ran as if not given; session 32: `--max-in-flight 4` in a closed loop): the flag,
# its namespace name, the shapes' flags and its use
OPEN_LOOPS = ("--rate", "--trace")
FOR_SOME_SHAPES = {
    "--arrivals": ("arrivals", ("--rate",), "sets the arrivals of --rate's open loop"),
    "--trace-speed": ("trace_speed", ("--trace",), "sets the speed of --trace's replay"),
    "--trace-scale": ("trace_scale", ("--trace",), "sets the share of --trace's arrivals replayed"),
    "--max-in-flight": ("max_in_flight", OPEN_LOOPS, "caps an open loop's requests in flight"),
}


def run_shape(args: argparse.Namespace) -> str:
    """The load-shape flag the run uses (`CANNOT_USE`'s first given), or "" for a closed loop of --users."""
    return next((flag for flag in CANNOT_USE if getattr(args, flag[2:])), "")


def set_aside_unused(args: argparse.Namespace) -> list[str]:
    """The values the run's load shape (`CANNOT_USE`, `FOR_SOME_SHAPES`) has no use for that the environment or a
    config file set: each set back to not given on `args`, and a note line each naming where it came from and why it
    is not used. Typed ones are left for `refuse_unusable` (or the shape's own check) to refuse."""
    from loadtest.load_flags import LOAD_SHAPES

    shape = run_shape(args)
    unused = {dest: f"{shape} {LOAD_SHAPES[shape]}" for dest in CANNOT_USE.get(shape, {}).values()}
    for dest, needs, what in FOR_SOME_SHAPES.values():
        if shape not in needs:
            unused[dest] = f"it {what}, and this run has no {' or '.join(needs)}"
    notes = []
    for dest, why in unused.items():
        value, where = getattr(args, dest), given_by_source(args, dest)
        if where and value not in ("", None):
            setattr(args, dest, "" if isinstance(value, str) else None)
            notes.append(f"note: {where} is not used: {why}")
    return notes


def refuse_unusable(args: argparse.Namespace) -> None:
    """A flag typed on the command line that the run's load shape cannot use, refused in one line (after
    `set_aside_unused` and the shape's own check, so what is left here was typed): `--stages 4:3s --users 32` ran 4
    users, `--rate 50 --users 32` an open loop, `--arrivals poisson` or `--max-in-flight 4` a closed loop, without a
    word."""
    from loadtest.load_flags import LOAD_SHAPES

    shape = run_shape(args)
    source = given_by_source(args, shape[2:].replace("-", "_")) if shape else None
    given = f"{shape} ({source})" if source else shape  # QUANTSERVE_STAGES beside a typed --users: say where it came
    for flag, dest in CANNOT_USE.get(shape, {}).items():
        if getattr(args, dest) not in ("", None):
            way_out = f"drop {flag}, or {shape} from {source}" if source else f"drop {flag}"
            raise QuantserveError(f"{given} {LOAD_SHAPES[shape]}; {way_out}")
    for flag, (dest, needs, what) in FOR_SOME_SHAPES.items():
        if shape not in needs and getattr(args, dest) not in ("", None):
            raise QuantserveError(f"{flag} {what}, and this run has no {' or '.join(needs)}; drop {flag}")


def trace_request_sizes(args: argparse.Namespace, pattern: Any) -> list[str]:
    """A replayed trace that sets each request's samples (a batch_size column) beside --request-batch: typed, refused
    in one line; from the environment or a config file, left unused with a note (returned). Before: ignored in
    silence, while `request_batch: 4` was recorded (runs are paired by it) for requests of 1 to 32 samples."""
    sizes = getattr(getattr(pattern, "trace", None), "sizes", None)
    if sizes is None or args.request_batch is None:
        return []
    why = f"--trace {pattern.path} sets each request's samples (its request-size column)"
    where = given_by_source(args, "request_batch")
    if not where:
        raise QuantserveError(f"{why}; drop --request-batch")
    args.request_batch = None
    return [f"note: {where} is not used: {why}"]


def load_pattern(args: argparse.Namespace) -> Any:
    """The load flags as one pattern (`loadtest.load_flags`): `--shape`, refusing the flags that set users, or the
    others (those the environment or a config file set that the shape cannot use set aside: `set_aside_unused`)."""
    from loadtest.load_flags import pattern_from_flags, shape_from_flags

    if args.shape:
        others = {"--stages": args.stages, "--trace": args.trace, "--rate": str(args.rate), "--sweep": args.sweep}
        return shape_from_flags(args.shape, args.duration, others, args.users, args.spawn_rate)
    users = DEFAULT_USERS if args.users is None else args.users
    return pattern_from_flags(
        users,
        args.sweep,
        str(args.rate),
        args.arrivals or DEFAULT_ARRIVALS,
        args.spawn_rate,
        args.stages,
        args.trace,
        1.0 if args.trace_speed is None else args.trace_speed,
        1.0 if args.trace_scale is None else args.trace_scale,
        args.duration,
    )
