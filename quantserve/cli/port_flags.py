"""`--port-range LO-HI` for the commands that start servers or Locust masters on ports of their own choosing
(`tune`, `bench`, `demo`, `loadtest`, `evaluate`): every such port is then taken from the range
(`serving.ports.free_port`), for machines whose firewall or neighbours leave only some ports to use."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from serving.ports import PORT_RANGE_ENV, PORT_RANGE_FROM_ENV, RANGE_FLAG, parse_port_range


def port_range_text(text: str) -> str:
    """The flag's value, checked (one line naming it when it is not LO-HI)."""
    parse_port_range(text)
    return text.strip()


def add_port_range_flag(parser: Any) -> None:
    parser.add_argument(
        "--port-range",
        type=port_range_text,
        metavar="LO-HI",
        help="take every port this command opens on 127.0.0.1 (servers, Locust) from LO-HI (default: any free)",
    )


@contextlib.contextmanager
def port_range_applied(args: argparse.Namespace) -> Iterator[None]:
    """The command's --port-range for every port chosen in this process (and its children) while it runs, marked as
    the flag's (a range that runs short is named as the user gave it: the flag, or the variable they set); the
    environment as it was afterwards (`main` may run in a process that runs other commands after)."""
    before = {name: os.environ.get(name) for name in (PORT_RANGE_ENV, PORT_RANGE_FROM_ENV)}
    given = getattr(args, "port_range", None)
    # the flag's default is the variable where the user set it (option_sources): then the variable is named
    if given and given != (before[PORT_RANGE_ENV] or "").strip():
        os.environ.update({PORT_RANGE_ENV: given, PORT_RANGE_FROM_ENV: RANGE_FLAG})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
