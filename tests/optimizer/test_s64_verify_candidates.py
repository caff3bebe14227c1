"""A verification refusal for a check the INT8 search never puts its candidates through (the closed loop: a stateful
model fed its own state) names the search's other candidates that held the budget, says they were not put through
it, and says whether an option picks one. The model: `test_state_loop`'s accumulator (state' = 0.998·state + W·x),
at --min-top1-agreement 0.95: row by row static Q/DQ and dynamic INT8 both held (margins 0.49 and 0.73 on 512 rows),
the faster won, and fed its own state it drifted; the refusal named neither the other nor what to try (session 64)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer.runners_up import HELD_ALSO, NOT_CHECKED, untried_words
from quantserve.cli import main
from tests.optimizer.test_state_loop import stateful  # noqa: F401  # `stateful` is the fixture


def test_closed_loop_refusal_names_the_candidates_that_held_unlooped(
    stateful: tuple[Path, Path, Path],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, calib, held_out = stateful
    out = tmp_path / "acc"
    argv = ["optimize", str(model), "--calib", str(calib), "--eval", str(held_out), "--out", str(out)]
    assert main([*argv, "--skip-timing", "--min-top1-agreement", "0.95", "--json"]) == 1
    captured = capsys.readouterr()
    line = captured.err.strip()
    assert line.count("\n") == 0, line
    assert line.startswith("quantserve: error: INT8 holds row by row but not fed its own state")
    document = json.loads(captured.out)
    refused = document["refused_schemes"]
    others = document["held_also"]
    assert others, document.keys()
    names = {other["scheme"] for other in others}
    assert names <= {"static_qdq", "dynamic"} and not names & set(refused)  # the winner is not its own runner-up
    for other in others:
        assert f"{other['name']} ({other['speedup']:.2f}× in the search)" in line
    assert "not put through the closed-loop check" in line
    assert "no optimize option picks one" in line
    assert document["not_checked"] == "closed_loop"
    assert not out.exists()


def _stages(*others: dict[str, object]) -> list[dict[str, object]]:
    return [{"stage": "fuse"}, {"stage": "calibrate", "scheme": "dynamic", "searched_rows": 512, "held_also": others}]


STATIC = {"scheme": "static_qdq", "name": "static_qdq", "speedup": 1.4, "margin": 0.3, "compositions": False}
DYNAMIC = {"scheme": "dynamic_7bit", "name": "dynamic_7bit", "speedup": 1.2, "margin": 0.4, "compositions": True}


def test_each_check_the_search_did_not_run_is_named_and_one_it_ran_is_not() -> None:
    rollout = {"samples": 300, "closed_loop": {"holds": True}, "rollout": {"holds": False}}
    words, record = untried_words(rollout, _stages(STATIC))
    assert (
        "other candidate that held the budget on its 512 held-out rows, static_qdq (1.40× in the search), was not "
        in words
    )
    assert "put through the free-running rollout" in words and record[NOT_CHECKED] == "rollout"
    rows = {"samples": 900}  # the search judged 512 of them, its winner all (or not, where its time ran out)
    words, record = untried_words(rows, _stages(STATIC, DYNAMIC))
    assert "candidates that held" in words and "static_qdq (1.40× in the search), dynamic_7bit (1.20×" in words
    assert "verification's judgement on all 900 held-out rows" in words and record[HELD_ALSO] == [STATIC, DYNAMIC]
    served = {
        "samples": 300,
        "judged_at": "batches of 64 in order",
        "batch_compositions": [{"holds": True}, {"holds": True}, {"holds": True}, {"holds": False}],
    }
    words, record = untried_words(served, _stages(STATIC, DYNAMIC))  # dynamic INT8 was judged at each one
    assert record == {HELD_ALSO: [STATIC], NOT_CHECKED: "batch_compositions"}
    assert "(this one missed with batches of 64 in order)" in words
    assert untried_words(served, _stages(DYNAMIC)) == ("", {})
    in_order = {"samples": 300, "batch_compositions": [{"holds": False}, {"holds": True}]}
    assert untried_words(in_order, _stages(STATIC)) == ("", {})  # judged as the search judged it
    assert untried_words(rollout, _stages()) == ("", {})  # nothing else held
    assert untried_words(rollout, [{"stage": "calibrate"}]) == ("", {})  # a build recorded before session 64
