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

DEFAULT_USERS = 16  # --users, where not given (None: not given, which --shape needs)


def before_load(every: list[Any], files: list[str], args: argparse.Namespace) -> None:
    """What is refused or said before any load, for every model at once: a run that would replace a results file
    (`files`, one per settings: `refuse_replacing`), a model not ready; then each note once, a large --data file's
    sample of requests and more --workers than this process's cores (once a run, not once a step)."""
    from loadtest.harness import check_ready
    from loadtest.recording_files import refuse_replacing
    from loadtest.window_notes import workers_note
    from serving.machine import cpu_facts

    refuse_replacing(Path(args.out), [(settings.label, file) for settings, file in zip(every, files, strict=True)])
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
CANNOT_USE |= {flag: {"--spawn-rate": "spawn_rate"} for flag in ("--trace", "--stages", "--rate")}
CANNOT_USE["--stages"] = {"--spawn-rate": "spawn_rate", "--duration": "duration"}  # its stages are the run's length


def set_aside_unused(args: argparse.Namespace) -> list[str]:
    """The values the run's load shape (`CANNOT_USE`) has no use for that the environment or a config file set: each
    set back to not given on `args`, and a note line each naming where it came from and why it is not used."""
    from loadtest.load_flags import LOAD_SHAPES

    shape = next((flag for flag in CANNOT_USE if getattr(args, flag[2:])), "")
    notes = []
    for dest in CANNOT_USE.get(shape, {}).values():
        value, where = getattr(args, dest), given_by_source(args, dest)
        if where and value not in ("", None):
            setattr(args, dest, "" if isinstance(value, str) else None)
            notes.append(f"note: {where} is not used: {shape} {LOAD_SHAPES[shape]}")
    return notes


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
        args.arrivals,
        args.spawn_rate,
        args.stages,
        args.trace,
        args.trace_speed,
        args.trace_scale,
        args.duration,
    )
