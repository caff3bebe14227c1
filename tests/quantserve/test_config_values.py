"""Options from a config file and the environment go through their flags' own conversion: a bad value, an
unknown key or a broken file is one line and exit 2, never a traceback or a default deployed in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve import cli

KEYS = (
    "repo, name, max_batch, max_queue_delay_us, preferred_batch, instances, ragged_batching, max_queue_size, "
    "queue_timeout_us, live_versions, keep_versions, allow_interface_change, url"
)


def deploy_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: bytes | None = None) -> str:
    """Run `deploy` of a missing build (so nothing is written); the one stderr line, after exit 2."""
    argv = ["deploy", str(tmp_path / "build"), "--repo", str(tmp_path / "repo"), "--name", "m"]
    if toml is not None:
        (tmp_path / "q.toml").write_bytes(toml)
        argv = ["--config", str(tmp_path / "q.toml"), *argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "repo" / "m").exists()
    return err.removeprefix("quantserve: error: ").rstrip("\n").replace(str(tmp_path / "q.toml"), "q.toml")


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        (b'[deploy]\nmax_batch = "lots"\n', '[deploy] max_batch = "lots": --max-batch expects an integer'),
        (b"[deploy]\nmax_batch = 8.5\n", "[deploy] max_batch = 8.5: --max-batch expects an integer"),
        (
            b"[deploy]\ninstances = [1, 2]\n",
            "[deploy] instances = [1, 2]: --instances expects an integer (one value, as on the command line)",
        ),
        (
            b'[deploy]\npreferred_batch = "8,x"\n',
            "[deploy] preferred_batch = \"8,x\": --preferred-batch: '8,x' is not a comma-separated list of integers",
        ),
        (
            b'[deploy]\nragged_batching = "zero"\n',
            '[deploy] ragged_batching = "zero": --ragged-batching expects one of group, pad',
        ),
        (
            b"[deploy]\nallow_interface_change = 1\n",
            "[deploy] allow_interface_change = 1: --allow-interface-change is a switch, expected true or false",
        ),
        (b"deploy = 3\n", "deploy = 3 is not a table: options go in a table, [deploy] then key = value"),
        (
            b"[deploy]\nmax_btach = 8\n",
            f"[deploy] max_btach is not an option; did you mean max_batch? (keys: {KEYS})",
        ),
        (
            b"[deploy]\nmax-batch = 4\n",
            "[deploy] max-batch is not a key; did you mean max_batch? (keys use '_' where flags use '-')",
        ),
    ],
)
def test_a_bad_value_or_key_in_the_file_is_one_line_naming_file_table_key_and_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: bytes, line: str
) -> None:
    assert deploy_error(tmp_path, capsys, toml) == f"q.toml: {line}"


def test_a_misspelt_table_is_refused_with_the_close_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = deploy_error(tmp_path, capsys, b"[deplyo]\nmax_batch = 4\n")
    assert line.startswith("q.toml: [deplyo] is not a command; did you mean deploy? (tables: optimize, deploy,")


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        (b"\xff\xfe[deploy]\n", "q.toml: cannot read config file (not UTF-8 text: byte 0xff at offset 0); "),
        (b"[deploy\n", "q.toml: cannot read config file (not valid TOML: "),
    ],
)
def test_a_file_that_is_not_utf8_toml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: bytes, line: str
) -> None:
    assert deploy_error(tmp_path, capsys, toml).startswith(line)


def test_good_values_from_the_file_are_converted_as_their_flags(tmp_path: Path) -> None:
    (tmp_path / "q.toml").write_text(
        '[deploy]\nmax_batch = 4\npreferred_batch = "2,4"\nallow_interface_change = true\n'
    )
    parser = cli.build_parser()
    cli._apply_defaults(parser, "deploy", cli._load_config(tmp_path / "q.toml"))
    args = parser.parse_args(["deploy", "b", "--name", "m"])
    assert (args.max_batch, args.preferred_batch, args.allow_interface_change) == (4, [2, 4], True)


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("QUANTSERVE_MAX_BATCH", "lots", "QUANTSERVE_MAX_BATCH='lots': --max-batch expects an integer"),
        ("QUANTSERVE_MAX_BATCH", "", "QUANTSERVE_MAX_BATCH='': --max-batch expects an integer"),
        (
            "QUANTSERVE_PREFERRED_BATCH",
            "8,x",
            "QUANTSERVE_PREFERRED_BATCH='8,x': --preferred-batch: '8,x' is not a comma-separated list of integers",
        ),
        (
            "QUANTSERVE_ALLOW_INTERFACE_CHANGE",
            "maybe",
            "QUANTSERVE_ALLOW_INTERFACE_CHANGE='maybe': --allow-interface-change is a switch, expected one of "
            "1, true, yes, on, 0, false, no, off",
        ),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_variable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert deploy_error(tmp_path, capsys) == line


@pytest.mark.parametrize(
    ("argv", "variable", "value", "line"),
    [
        (["loadtest", "--model", "m"], "QUANTSERVE_USERS", "abc", "QUANTSERVE_USERS='abc': --users expects an integer"),
        (
            ["loadtest", "--model", "m"],
            "QUANTSERVE_WORKERS",
            "1.5",
            "QUANTSERVE_WORKERS='1.5': --workers expects an integer",
        ),
        (["serve"], "QUANTSERVE_GRPC_PORT", "abc", "QUANTSERVE_GRPC_PORT='abc': --grpc-port expects an integer"),
    ],
)
def test_environment_values_of_other_commands(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    if argv[0] == "loadtest":
        argv = [*argv, "--url", "127.0.0.1:18399", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "o")]
    else:
        argv = [*argv, "--repo", str(tmp_path / "repo")]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"
    assert not (tmp_path / "o").exists()


def _append_flags() -> list[tuple[str, str, str]]:
    """(command, dest, flag) of every repeatable option (`action="append"`) of every subcommand."""
    import argparse

    found = []
    for action in cli.build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                found += [
                    (command, a.dest, max(a.option_strings, key=len))
                    for a in subparser._actions
                    if isinstance(a, argparse._AppendAction)
                ]
    return found


REQUIRED_ARGS = {
    "optimize": ["m.onnx", "--calib", "c.npz", "--out", "o"],
    "evaluate": ["--models", "a", "--reference", "a", "--data", "d.npz", "--out", "o"],
    "report": ["results"],
}


@pytest.mark.parametrize(("command", "dest", "flag"), _append_flags())
def test_a_repeatable_flag_on_the_command_line_replaces_the_file_and_environment_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, dest: str, flag: str
) -> None:
    """`--build b` with `[report] build = ["a"]` ran with [a, b]: the command line added to the file's list
    instead of replacing it, as it replaces every other option's value."""
    (tmp_path / "q.toml").write_text(f'[{command}]\n{dest} = ["file=probs"]\n')

    def parsed(*flags: str) -> list[str]:
        parser = cli.build_parser()
        cli._apply_defaults(parser, command, cli._load_config(tmp_path / "q.toml"))
        return [str(v) for v in getattr(parser.parse_args([command, *REQUIRED_ARGS[command], *flags]), dest)]

    assert parsed() == ["file=probs"]  # the file over the default
    assert parsed(flag, "cli=probs") == ["cli=probs"]  # the command line over the file
    assert parsed(flag, "cli=probs", flag, "cli2=probs") == ["cli=probs", "cli2=probs"]  # repeated: all of them
    monkeypatch.setenv(f"QUANTSERVE_{dest.upper()}", "env=probs")
    assert parsed() == ["env=probs"]  # the environment over the file
    assert parsed(flag, "cli=probs") == ["cli=probs"]  # the command line over the environment


def test_every_repeatable_flag_is_covered() -> None:
    assert {(c, d) for c, d, _ in _append_flags()} >= {
        ("optimize", "output_kind"),
        ("evaluate", "output_kind"),
        ("report", "build"),
    }
