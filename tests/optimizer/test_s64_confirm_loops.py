"""The INT8 search puts the candidates it confirms through the closed loop (a stateful model fed its own state) as
verification does, so a winner that misses it gives way to the next that holds. The model: `test_state_loop`'s
accumulator (state' = 0.998·state + W·x). Row by row static Q/DQ and dynamic INT8 both hold; fed its own state,
static Q/DQ loses class 2 outright (top-1 agreement there 0) and dynamic INT8 keeps it on 0.49 of its rows. Only the
winner went through the loop, in verification: a winner that missed it was refused with the runner-up named as
"not put through the closed-loop check … no optimize option picks one" (session 64)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optimizer.int8_search
from optimizer.speed import Block
from quantserve.cli import main
from tests.optimizer.test_state_loop import stateful  # noqa: F401  # `stateful` is the fixture

SPEEDUPS = {"static_qdq": 3.0, "dynamic": 2.0}  # static Q/DQ times fastest: the search's winner


def _timed_by_scheme(fp32: Path, int8: Path, *_: Any, **__: Any) -> Block:
    """The paired timing, by the candidate's file: static Q/DQ the fastest, the others slower (no clock read)."""
    ratio = SPEEDUPS.get(Path(int8).stem, 1.0)
    return Block(fp32_ms=ratio, int8_ms=1.0, ratio=ratio, pairs=3)


def _optimize(files: tuple[Path, Path, Path], out: Path, *flags: str) -> int:
    model, calib, held_out = files
    argv = ["optimize", str(model), "--calib", str(calib), "--eval", str(held_out), "--out", str(out)]
    return main([*argv, "--skip-timing", "--json", *flags])


def test_a_winner_that_misses_the_closed_loop_gives_way_to_the_runner_up_that_holds_it(
    stateful: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(optimizer.int8_search, "time_pair", _timed_by_scheme)
    out = tmp_path / "acc"
    assert _optimize(stateful, out, "--min-top1-agreement", "0.45") == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    search = next(s for s in manifest["stages"] if s.get("stage") == "calibrate")
    assert search["scheme"] == "dynamic"
    loop = manifest["verification"]["closed_loop"]
    assert loop["holds"] and np.isclose(search["speed"]["speedup"], 2.0)
    note = search["passed_over_note"]
    assert "the static_qdq candidate (3.00× in the search) held the drift budget row by row" in note, note
    assert "missed the closed-loop check (each fed its own state: output 'prob': top-1 agreement on one class" in note
    assert note.endswith("was passed over for dynamic (2.00×), which holds it")
    passed = {o["scheme"]: o.get("missed") for o in search["held_also"]}
    assert passed.get("static_qdq") == "closed_loop" and "dynamic" not in passed


def test_a_refusal_names_the_runners_up_the_search_put_through_the_closed_loop(
    stateful: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "acc"
    assert _optimize(stateful, out, "--min-top1-agreement", "0.95") == 1
    captured = capsys.readouterr()
    line = captured.err.strip()
    assert line.startswith("quantserve: error: INT8 holds row by row but not fed its own state"), line
    document = json.loads(captured.out)
    others = document["held_also"]
    assert others and all(o["missed"] == "closed_loop" for o in others), others
    for other in others:
        assert f"{other['name']} ({other['speedup']:.2f}× in the search) missed the closed-loop check" in line
    assert "put through the same checks in the search" in line
    assert "not put through" not in line and "no optimize option picks one" not in line
    assert "not_checked" not in document
    assert not out.exists()
