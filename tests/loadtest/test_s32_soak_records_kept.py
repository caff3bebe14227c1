"""A closed-loop run into an --out holding a soak of its model (session 32, issue 11), no Locust run here: the soak's
records are in its closed loop's step folders (`raw/m-u16`, `locust/m-u16`), which a plain `loadtest --users 16` (or a
sweep through 16, or `evaluate --load-duration`) cleared before its own step, in silence. Refused, as a soak into a
folder holding a closed-loop run is (session 31); open-loop and staged runs, filed apart, still sit beside a soak.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the refusals stops at the server check
NO_SERVER = f"no Triton server answers at {DEAD_URL}"


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    return data


def _soaked(tmp_path: Path) -> Path:
    """An --out a 16-user soak of m saved: its result and its step's raw records."""
    out = tmp_path / "out"
    (out / "raw" / "m-u16").mkdir(parents=True)
    np.save(out / "raw" / "m-u16" / "latencies-1.npy", np.ones((3, 8)))
    (out / "soak-m.json").write_text("{}")  # what is in it does not matter: its records would be cleared
    return out


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.removeprefix("quantserve: error: ").rstrip("\n")


def _refusal(out: Path) -> str:
    return (
        f"{out / 'soak-m.json'}: a soak of 'm' is saved here, whose records a closed-loop run of it would clear (they "
        "share its step folders); give this run another --out, or remove that file"
    )


@pytest.mark.parametrize("flags", [["--users", "16"], ["--sweep", "4,16"], []])
def test_a_closed_loop_run_into_a_folder_holding_a_soak_is_refused(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _soaked(tmp_path)
    target = ["--url", DEAD_URL, "--metrics-url", DEAD_URL, "--model", "m", "--data", str(_data(tmp_path))]
    assert cli.main(["loadtest", *target, "--out", str(out), "--duration", "2s", *flags]) == 2
    assert _error(capsys) == _refusal(out)
    assert sorted(p.name for p in (out / "raw" / "m-u16").iterdir()) == ["latencies-1.npy"]


def test_evaluate_with_a_load_refuses_a_folder_holding_a_soak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _soaked(tmp_path)
    argv = ["evaluate", "--url", DEAD_URL, "--models", "m", "--reference", "m", "--data", str(_data(tmp_path))]
    assert cli.main([*argv, "--out", str(out), "--load-duration", "2s"]) == 2
    assert _error(capsys) == _refusal(out)
    assert sorted(p.name for p in out.iterdir()) == ["raw", "soak-m.json"]  # refused before the accuracy pass


def test_open_loop_and_staged_runs_and_other_models_sit_beside_a_soak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _soaked(tmp_path)
    argv = ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, "--data", str(_data(tmp_path)), "--out", str(out)]
    for flags in (["--model", "m", "--rate", "5"], ["--model", "m", "--stages", "2:2s"], ["--model", "n"]):
        assert cli.main([*argv, *flags]) == 2
        assert _error(capsys) == NO_SERVER, flags
