"""The `quantserve` command: one entry point, one subcommand per job.

Every option is also settable from the environment (`QUANTSERVE_<OPTION>`, e.g.
`QUANTSERVE_GRPC_PORT=9001`) or from a TOML config file (`--config quantserve.toml`, one table
per subcommand, e.g. `[serve] grpc_port = 9001`). Precedence: command line > environment >
config file > built-in default.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import select
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quantserve.cli.option_sources import (
    SOURCES_DEST,
    command_table,
    environment_defaults,
    file_defaults,
    read_config,
    refuse_empty_paths,
    refuse_missing,
    relax_required,
    typed_options,
    value_sources,
)
from quantserve.errors import InternalError, QuantserveError

# Subcommand modules under quantserve.cli.commands, each exposing `register(subparsers)`.
# This package is the application layer: nothing below imports it.
COMMANDS = (
    "optimize",
    "deploy",
    "rollback",
    "serve",
    "infer",
    "loadtest",
    "evaluate",
    "report",
    "profile",
    "demo",
    "doctor",
    "tune",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantserve",
        description="Optimize a model to INT8, deploy it to Triton, load-test it, prove speed and accuracy.",
    )
    parser.add_argument("--config", type=Path, help="TOML file with one table of options per subcommand")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no notes, results only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"quantserve.cli.commands.{name}") is not None:
            importlib.import_module(f"quantserve.cli.commands.{name}").register(sub)
    refuse_empty_paths(parser)
    return parser


def _apply_defaults(
    parser: argparse.ArgumentParser,
    command: str,
    config: dict,
    source: str = "config file",
    argv: list[str] | None = None,
) -> None:
    """Lower the config file's table, then the environment, into the subparser's defaults, each value converted
    and checked as its flag's (`option_sources`), and where each came from unless the command line `argv` gives it;
    `source` names the file in an error."""
    subparser = _subparser(parser, command)
    table = command_table(config, command, list(COMMANDS), source)
    from_file, from_env = file_defaults(subparser, command, table, source), environment_defaults(subparser)
    typed = set() if argv is None else typed_options(parser, subparser, argv)
    subparser.set_defaults(**from_file)
    subparser.set_defaults(**from_env)
    subparser.set_defaults(**{SOURCES_DEST: value_sources(command, source, from_file, from_env, typed)})


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise InternalError("no subcommands registered")


def _load_config(path: Path | None) -> dict:
    return {} if path is None else read_config(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a QuantserveError becomes one line on stderr and a non-zero exit."""
    argv = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    previous = _sigterm_as_interrupt()
    args = None
    try:
        parser = build_parser()  # imports every command's module: seconds, where a Ctrl-C often comes
        required = relax_required(parser)  # the environment or a config file may give them: checked once merged
        first = parser.parse_args(argv)
        _apply_defaults(parser, first.command, _load_config(first.config), str(first.config), argv)
        args = parser.parse_args(argv)
        refuse_missing(args.command, required.get(args.command, []), args)
        code = _run_command(args)
        sys.stdout.flush()  # a reader that left shows here, not as "Exception ignored" at interpreter exit
        return code
    except QuantserveError as exc:
        print(f"quantserve: error: {exc}{_given_where(str(exc), args)}", file=sys.stderr)
        return exc.exit_code
    except InternalError as exc:
        print(f"quantserve: internal error (a bug in quantserve, please report it): {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine said no (a folder not writable, a disk full, a path through a file)
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            return _reader_left()
        print(f"quantserve: error: {_os_error_line(exc)}", file=sys.stderr)
        return QuantserveError.exit_code
    except KeyboardInterrupt:
        print("quantserve: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def hoist_global_options(argv: list[str]) -> list[str]:
    """`argv` with quantserve's own options given after the command (`-q`/`--quiet`, `--config FILE`) moved before
    it: `quantserve deploy build/x --name m --quiet` was refused as "unrecognized arguments: --quiet" (session 41),
    the option named in the top-level usage line, with no hint that its place was before the command. No
    command has options of those names; nothing after a `--` moves."""
    command = 0
    while command < len(argv) and argv[command] not in COMMANDS:
        if not argv[command].startswith("-"):
            return argv  # no command where one belongs: argparse says so
        command += 2 if argv[command] == "--config" else 1
    front, rest = argv[:command], argv[command:]
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "--":
            break
        if word in ("-q", "--quiet") or word.startswith("--config="):
            front.append(rest.pop(index))
        elif word == "--config" and index + 1 < len(rest):
            front += [rest.pop(index), rest.pop(index)]
        else:
            index += 1
    return front + rest


def _given_where(line: str, args: argparse.Namespace | None) -> str:
    """Where the flag a command's error names got its value, where the environment or a config file gave it
    (`option_sources.value_sources`): `[serve] grpc_port = 70000` was refused as "--grpc-port 70000 is not a port",
    a flag the user never typed (session 40). "" where the line names no such flag."""
    sources = getattr(args, SOURCES_DEST, None) or {}
    for dest, where in sources.items():
        flag = "--" + dest.replace("_", "-")
        if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", line) and where not in line:
            return f" (given by {where})"
    return ""


def _os_error_line(exc: OSError) -> str:
    """`PATH: reason` for an OSError the system raised about a file, else its own text."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror.lower()}"


def _stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone (`quantserve … | head -1`): poll reports an error
    on it. A BrokenPipeError from a server's socket, with stdout still read, stays an error."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (AttributeError, OSError, ValueError):  # no file descriptor (captured in tests) or no poll here
        return False
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def _reader_left() -> int:
    """Exit quietly, as Python's docs advise for SIGPIPE: what is still buffered goes to /dev/null, not to a
    second BrokenPipeError at exit. 1, the code rich's own tables exit with when their reader leaves."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """SIGTERM takes Ctrl-C's path, so every server, Locust run and scratch folder a command started is
    stopped or removed by the context managers that own them (a bare SIGTERM left tritonserver running).
    Returns the previous handler (None where signals cannot be set: not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def _run_command(args: argparse.Namespace) -> int:
    """Run the subcommand with library chatter in the log file; then the tool's own notes on stderr."""
    from optimizer.onnxruntime_runner import quiet_onnxruntime
    from quantserve.cli.library_log import library_log
    from quantserve.cli.port_flags import port_range_applied

    quiet_onnxruntime()  # ORT's C++ logger writes to stderr itself, past Python's logging: every command's sessions
    with port_range_applied(args), library_log(args.command) as captured:
        try:
            return int(args.func(args) or 0)
        finally:
            if not args.quiet:
                for line in captured.lines():
                    print(f"quantserve: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
