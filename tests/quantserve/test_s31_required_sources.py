"""Required options given by the environment or a config file (session 31, issue 11): `QUANTSERVE_MODEL=…` or a
config file's `[loadtest] model = …` failed with argparse's "the following arguments are required", though every
option is documented as settable there. They are required once all sources merged, one line naming the three ways.
Also a key above every table, `users = 4`, was said to be "[users] is not a command".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve import cli

DEAD_URL = "127.0.0.1:1"
NO_SERVER = f"quantserve: error: no Triton server answers at {DEAD_URL}\n"


def test_model_data_and_out_from_the_environment_or_a_config_file_are_enough(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    argv = ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        "quantserve: error: loadtest needs --model, --data and --out: give each on the command line, in the "
        "environment (QUANTSERVE_MODEL=…) or in a config file's [loadtest] table (model = …)\n"
    )
    monkeypatch.setenv("QUANTSERVE_MODEL", "m")
    config = tmp_path / "q.toml"
    config.write_text(f'[loadtest]\ndata = "{data}"\nout = "{tmp_path / "out"}"\n')
    assert cli.main(["--config", str(config), *argv]) == 2  # past the options, on to the server check
    assert capsys.readouterr().err == NO_SERVER


def test_a_key_above_every_table_is_said_to_be_outside_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "q.toml"
    config.write_text("users = 4\n[loadtest]\n")
    assert cli.main(["--config", str(config), "loadtest", "--model", "m", "--data", "d", "--out", "o"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {config}: users = 4 is outside any table: options go in their command's table, "
        "[loadtest] then users = 4\n"
    )
