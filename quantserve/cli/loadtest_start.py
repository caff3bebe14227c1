"""What `quantserve loadtest` settles before any load: the load flags as one pattern (`--shape` refusing the flags
that set users where the command line gives them, leaving unused those the environment or a config file set), and
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


# the flags --shape refuses, as it sets the users: given on the command line; set by the environment or a config
# file (defaults for other runs), they are not used, in a note (QUANTSERVE_USERS refused every --shape run)
SHAPE_SETS = {"--stages": "stages", "--trace": "trace", "--rate": "rate", "--sweep": "sweep"}
SHAPE_SETS |= {"--users": "users", "--spawn-rate": "spawn_rate"}


def unused_by_shape(args: argparse.Namespace) -> list[str]:
    """A line per value of `SHAPE_SETS` the environment or a config file set, which --shape does not use."""
    sources = (given_by_source(args, dest) for dest in SHAPE_SETS.values() if getattr(args, dest) not in ("", None))
    return [f"note: {where} is not used: --shape sets its own users (its tick())" for where in sources if where]


def load_pattern(args: argparse.Namespace) -> Any:
    """The load flags as one pattern (`loadtest.load_flags`): `--shape`, refusing the flags that set users (given on
    the command line: `unused_by_shape`), or the others."""
    from loadtest.load_flags import pattern_from_flags, shape_from_flags

    if args.shape:
        given = {flag: getattr(args, dest) for flag, dest in SHAPE_SETS.items() if not given_by_source(args, dest)}
        users, spawn_rate = given.pop("--users", None), given.pop("--spawn-rate", None)
        others = {flag: str(value) for flag, value in given.items()}
        return shape_from_flags(args.shape, args.duration, others, users, spawn_rate)
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
    )
