"""Option values from the environment (`QUANTSERVE_<DEST>`) and a TOML config file (`[command] dest = value`).

Each value goes through its flag's own conversion (argparse `type`, `choices`, a flag that takes no value or
repeats), so a value the command line would refuse is refused here too: one line naming where it came from
(the variable, or the file, table and key), the value and what the flag expects — never a traceback, and
never a misspelt key ignored in silence while the default is deployed. A repeatable flag's list from here is
replaced by the command line's, as every other flag's value is, not added to (see `ListFromSource`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError

ENV_PREFIX = "QUANTSERVE_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
SOURCES_DEST = "option_sources"  # on a command's namespace: `value_sources`


def given_path(text: str) -> Path:
    """A path option's value, every `type=Path` option's (`refuse_empty_paths`): an empty one (`--repo ""`,
    `QUANTSERVE_REPO=`) is refused. As Path('') it was the current folder: deploy wrote model versions into it and
    `optimize --out ""` tried to replace it (session 41)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (read as the current folder); name one")
    return Path(text)


def refuse_empty_paths(parser: argparse.ArgumentParser) -> None:
    """Give every `type=Path` option of `parser` and its subcommands `given_path` as its type."""
    for action in parser._actions:
        if action.type is Path:
            action.type = given_path
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                refuse_empty_paths(subparser)


EXPECTED_BY_TYPE = {
    int: "an integer",
    float: "a number",
    Path: "a path",
    given_path: "a path",
    str: "text",
    None: "text",
}


class ListFromSource(list):  # type: ignore[type-arg]
    """A repeatable flag's values from the environment or a config file, given to argparse as the flag's default.

    argparse's `append` action copies the current list and adds each value of the command line to it, so
    `--build b` with `[report] build = ["a"]` ran with [a, b]. The copy it takes of this list is empty: the
    command line's first value starts a new list, which replaces this one as any flag's value replaces the file's.
    """

    def __copy__(self) -> list[Any]:
        return []


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file's tables; unreadable, not UTF-8 or not TOML is one line naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except OSError as exc:
        raise QuantserveError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise QuantserveError(
            f"{path}: cannot read config file (not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); a config file is TOML in UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise QuantserveError(f"{path}: cannot read config file (not valid TOML: {exc})") from None


def command_table(config: dict[str, Any], command: str, commands: list[str], source: str) -> dict[str, Any]:
    """`config[command]`, after checking every top-level name is a command whose value is a table."""
    for name, value in config.items():
        if not isinstance(value, dict) and name not in commands:  # `users = 4` above every table was "[users] ..."
            raise QuantserveError(
                f"{source}: {name} = {_toml(value)} is outside any table: options go in their command's table, "
                f"[{command}] then {name} = {_toml(value)}"
            )
        if name not in commands:
            raise QuantserveError(f"{source}: [{name}] is not a command{_suggestion(name, commands, 'tables')}")
        if not isinstance(value, dict):
            raise QuantserveError(
                f"{source}: {name} = {_toml(value)} is not a table: options go in a table, [{name}] then key = value"
            )
    return config.get(command, {})  # type: ignore[no-any-return]


def file_defaults(subparser: argparse.ArgumentParser, command: str, table: dict[str, Any], source: str) -> dict:
    """The table's values converted as their flags convert them; an unknown key is refused with the known ones."""
    actions = {a.dest: a for a in subparser._actions if a.option_strings and a.dest != "help"}
    values = {}
    for key, value in table.items():
        if key not in actions:
            raise QuantserveError(f"{source}: [{command}] {_unknown_key(key, actions, subparser)}")
        where = f"{source}: [{command}] {key} = {_toml(value)}"
        values[key] = _from_file(actions[key], value, where)
    return values


def environment_defaults(subparser: argparse.ArgumentParser, environ: dict[str, str] | None = None) -> dict:
    """`QUANTSERVE_<DEST>` for each option of the subparser, converted as its flag converts it."""
    environ = dict(os.environ) if environ is None else environ
    values = {}
    for action in subparser._actions:
        name = ENV_PREFIX + action.dest.upper()
        if action.option_strings and action.dest != "help" and name in environ:
            text = environ[name]
            where = f"{name}={text!r}"
            if _takes_no_value(action):
                values[action.dest] = _switch(action, _env_bool(action, text, where))
            else:
                value = _convert(action, text, where)
                values[action.dest] = ListFromSource([value]) if isinstance(action, argparse._AppendAction) else value
    return values


def value_sources(command: str, source: str, from_file: dict, from_env: dict, typed: set[str]) -> dict[str, str]:
    """Where each option's value came from when the config file or the environment set it, the environment's over
    the file's (`QUANTSERVE_USERS=8`, `q.toml: [loadtest] users = 8`), but not the options the command line gave
    (`typed`: its value replaced theirs, the same or not); kept on the command's namespace (`given_by_source`)."""
    sources = {dest: f"{source}: [{command}] {dest} = {_toml(value)}" for dest, value in from_file.items()}
    for dest in from_env:
        name = ENV_PREFIX + dest.upper()
        sources[dest] = f"{name}={os.environ.get(name, '')}"
    return {dest: where for dest, where in sources.items() if dest not in typed}


def given_by_source(args: argparse.Namespace, dest: str) -> str | None:
    """Where the option's value came from when the environment or the config file set it (`value_sources`); None
    where the command line or the built-in default set it."""
    return getattr(args, SOURCES_DEST, {}).get(dest)  # type: ignore[no-any-return]


def relax_required(parser: argparse.ArgumentParser) -> dict[str, list[argparse.Action]]:
    """Each subcommand's required options and arguments, made optional to argparse and returned by command for
    `refuse_missing`: argparse refused `--model` set only as QUANTSERVE_MODEL or in a config file ("the following
    arguments are required") before either source was read, though both are documented ways to give every option;
    and a missing argument (`optimize` without MODEL) stopped it before it looked for the options, so the user who
    gave MODEL was then told of --calib and --out."""
    required: dict[str, list[argparse.Action]] = {}
    for group in (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)):
        for command, subparser in group.choices.items():
            arguments = [a for a in subparser._actions if not a.option_strings and a.required]
            required[command] = arguments + [a for a in subparser._actions if a.option_strings and a.required]
            for action in required[command]:
                action.required = False  # an argument keeps its nargs, so the usage line still shows it required
                if action.option_strings and action.help and "(required" not in action.help:  # brackets: not said
                    action.help += " (required: here, in the environment or in a config file)"
    return required


NEEDED_ATTR = "quantserve_needed"  # on a required option's action: its `needed_when` rule


def needed_when(action: argparse.Action, rule: Callable[[argparse.Namespace], str | None]) -> None:
    """Make a required option needed only where `rule(args)` names it (the words naming it in the missing line),
    not where it returns None: optimize's --calib is needed for INT8 alone, an FP32 build takes --eval's rows."""
    setattr(action, NEEDED_ATTR, rule)


def _missing_name(action: argparse.Action, args: argparse.Namespace) -> str | None:
    """How the missing line names an argument or option no source gave (None: given, or not needed here)."""
    if getattr(args, action.dest, None) not in (None, "", []):  # QUANTSERVE_X= is not given
        return None
    if not action.option_strings:
        return _name(action)
    rule = getattr(action, NEEDED_ATTR, None)
    return rule(args) if rule is not None else _flag(action)


def refuse_missing(command: str, required: list[argparse.Action], args: argparse.Namespace) -> None:
    """One line naming every required argument and option no source gave (`relax_required`), and where to give
    each: an argument on the command line, an option there or in either of the other two sources."""
    missing = [(action, name) for action in required if (name := _missing_name(action, args))]
    if not missing:
        return
    arguments = [name for action, name in missing if not action.option_strings]
    options = [action for action, _ in missing if action.option_strings]
    named = _listed([name for _, name in missing])
    raise QuantserveError(f"{command} needs {named}: {_where_to_give(command, arguments, options)}")


def _where_to_give(command: str, arguments: list[str], options: list[argparse.Action]) -> str:
    """`give it on the command line`, and for options the environment's variable and the config file's key."""
    given = f"give {'it' if len(arguments) + len(options) == 1 else 'each'} on the command line"
    if arguments and options:
        given = (
            f"give {_listed(arguments)} on the command line, and {'each option' if options[1:] else 'the option'} there"
        )
    if not options:
        return given
    first = options[0].dest
    sources = f"in the environment ({ENV_PREFIX}{first.upper()}=…) or in a config file's [{command}] table"
    return f"{given}, {sources} ({first} = …)"


class _NotTyped(list):  # type: ignore[type-arg]
    """An option's default while `typed_options` parses: still this very object after parsing, the command line did
    not give the option. A list whose copy is empty, so that a repeatable flag's `append` starts a new list."""

    def __copy__(self) -> list[Any]:
        return []


def typed_options(parser: argparse.ArgumentParser, subparser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options of `subparser` the command line `argv` gives, whatever their value: `--users 8` typed with
    QUANTSERVE_USERS=8 set is the command line's (a value compared with the environment's read as the environment's).
    The subparser's defaults are as they were after."""
    dests = {a.dest for a in subparser._actions if a.option_strings and a.dest != "help"}
    before = {dest: subparser.get_default(dest) for dest in dests}
    markers = {dest: _NotTyped() for dest in dests}
    subparser.set_defaults(**markers)
    try:
        parsed = parser.parse_args(argv)
    finally:
        subparser.set_defaults(**before)
    return {dest for dest, marker in markers.items() if getattr(parsed, dest) is not marker}


def _from_file(action: argparse.Action, value: Any, where: str) -> Any:
    """A TOML value as the flag's value: a boolean for a switch, else the text one would type after the flag
    (an array for a repeatable flag)."""
    if _takes_no_value(action):
        if not isinstance(value, bool):
            raise QuantserveError(f"{where}: {_flag(action)} is a switch, expected true or false")
        return _switch(action, value)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return ListFromSource(_convert(action, _text(action, item, where), where) for item in items)
    return _convert(action, _text(action, value, where), where)


def _text(action: argparse.Action, value: Any, where: str) -> str:
    """What one would type after the flag: a string as is, a number as written; a boolean, array or table is
    not one value."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise QuantserveError(f"{where}: {_flag(action)} expects {_expected(action)} (one value, as on the command line)")


def _convert(action: argparse.Action, text: str, where: str) -> Any:
    """The flag's own `type` and `choices`, as argparse applies them to the command line."""
    convert = action.type if callable(action.type) else str
    try:
        value = convert(text)
    except argparse.ArgumentTypeError as exc:
        raise QuantserveError(f"{where}: {_flag(action)}: {exc}") from None
    except QuantserveError as exc:  # a type's own line (`--port-range 'junk' is not a port range`): where it came from
        raise QuantserveError(f"{where}: {exc}") from None
    except (TypeError, ValueError):
        raise QuantserveError(f"{where}: {_flag(action)} expects {_expected(action)}") from None
    if action.choices is not None and value not in action.choices:
        raise QuantserveError(f"{where}: {_flag(action)} expects {_expected(action)}")
    return value


def _expected(action: argparse.Action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(str(c) for c in action.choices)
    return EXPECTED_BY_TYPE.get(action.type, "a valid value")  # type: ignore[arg-type]


def _takes_no_value(action: argparse.Action) -> bool:
    return isinstance(action, argparse._StoreConstAction) and action.nargs == 0


def _switch(action: argparse.Action, on: bool) -> Any:
    """A switch's value: its constant when on (True for store_true, False for store_false), else its default."""
    return action.const if on else action.default


def _env_bool(action: argparse.Action, text: str, where: str) -> bool:
    words = TRUE_WORDS + FALSE_WORDS
    if text.strip().lower() in words:
        return text.strip().lower() in TRUE_WORDS
    raise QuantserveError(f"{where}: {_flag(action)} is a switch, expected one of {', '.join(words)}")


def _unknown_key(key: str, actions: dict[str, argparse.Action], subparser: argparse.ArgumentParser) -> str:
    """`KEY is not an option …; did you mean …?` with the known keys; a key spelt as its flag ('-') is named."""
    if key.replace("-", "_") in actions:
        return f"{key} is not a key; did you mean {key.replace('-', '_')}? (keys use '_' where flags use '-')"
    positional = {a.dest for a in subparser._actions if not a.option_strings}
    if key in positional:
        return f"{key} is an argument, given on the command line only; keys: {', '.join(actions)}"
    return f"{key} is not an option{_suggestion(key, list(actions), 'keys')}"


def _suggestion(name: str, known: list[str], kind: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return (f"; did you mean {close[0]}?" if close else "") + f" ({kind}: {', '.join(known)})"


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def _name(argument: argparse.Action) -> str:
    """An argument as the usage line names it: its metavar, else its name."""
    return str(argument.metavar or argument.dest)


def _listed(names: list[str]) -> str:
    """`A`, `A and B`, `A, B and C`."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _toml(value: Any) -> str:
    """A value as TOML writes it: `"lots"`, `8.5`, `true`, `[1, 2]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
