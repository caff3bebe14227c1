"""What the INT8 search's time lines say was and was not tried (probe pm8, deepCR's cosmic-ray U-Net).

At --max-search-s 600 under --keep-failing the build shipped with "budget MISSED" and no word that the search ran out
before the compute-only candidate and before any mixed-precision step; at 300 s the refusal's "220 s of its 300 s
budget spent" read as a contradiction, where the next candidate (155 s each) did not fit in the 80 s left. Judged on a
budget's fake clock and on the manifest's records: nothing depends on timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optimizer.batch_advice import unbatched_reason
from optimizer.search_budget import CANDIDATE, STEP, DeadlineReached, SearchBudget, unfinished_note
from quantserve.artifact import Artifact, Manifest
from quantserve.cli import main

# deepCR at --max-search-s 600 --keep-failing: the calibrate stage's records as its manifest holds them
DEEPCR_TIME = {
    "left_undone": ["the static_qdq_compute candidate"],
    "max_search_s": 600.0,
    "overran_s": 0.0,
    "ran_out": True,
    "spent_s": 452.59,
    "unit_s": {"candidate": 155.66, "profile": 60.57, "timing": 88.93},
}
DEEPCR_MIXED = {
    "chosen": True,
    "from_scheme": "static_qdq",
    "probes": [],
    "steps": [],
    "stopped": "search time budget spent",
}
DEEPCR_STAGE = {
    "stage": "calibrate",
    "scheme": "static_qdq",
    "within_budget": False,
    "time_budget": DEEPCR_TIME,
    "mixed_precision": DEEPCR_MIXED,
}
DEEPCR_NOTE = (
    "kept failing: this INT8 model misses its drift budget and is the closest the search found before its time ran "
    "out (453 s of its 600 s budget spent), not the closest it could find (left undone: the static_qdq_compute "
    "candidate; the mixed-precision search, which took no step); give it time with --max-search-s 1200"
)


def clocked(seconds: float) -> tuple[SearchBudget, list[float]]:
    now = [0.0]
    return SearchBudget(seconds, lambda: now[0]), now


def test_the_refusal_says_the_next_candidate_would_not_fit_in_the_time_left() -> None:
    """deepCR at 300 s: the reference run and one 155 s candidate spent 220 s; the 7-bit one did not fit in 80 s."""
    budget, now = clocked(300.0)
    now[0] = 65.0
    with budget.spend(CANDIDATE):
        now[0] = 220.0
    assert not budget.affords(CANDIDATE)
    budget.skip("the static_qdq_7bit candidate")
    assert str(budget.refusal()) == (
        "the INT8 search ran out of time: 220 s of its 300 s budget spent before any INT8 model was verified within "
        "the drift budget and timed, and the next candidate (about 155 s, as long as the longest so far) would not "
        "fit in the 80 s left (left undone: the static_qdq_7bit candidate); nothing written: raise the budget with "
        "--max-search-s (e.g. --max-search-s 600) or deploy fp32"
    )
    first = {"unit": "candidate", "unit_s": 155.0, "left_s": 80.0, "kept_s": 0.0}
    assert budget.record()["first_undone"] == first
    line = str(budget.refusal("static_qdq, output 'crmask': mask IoU 0.3372 < budget 0.95", "deploy fp32"))
    assert "would not fit in the 80 s left (left undone: the static_qdq_7bit candidate); closest: static_qdq, " in line
    assert line.endswith("< budget 0.95; deploy fp32") and "\n" not in line, line


def test_a_mixed_precision_step_cut_by_the_whole_budget_says_what_was_kept_back() -> None:
    """A capped view that the whole budget's end bounds hands back what it left undone, and why it did not fit."""
    budget, now = clocked(300.0)
    with budget.spend(STEP):
        now[0] = 5.0
    now[0] = 280.0
    view = budget.capped(60.0)
    assert view.bound_by_parent and not view.affords(STEP, reserve=16.0)  # 20 s left, 16 s of them kept back
    view.skip("mixed precision: 3 of 3 steps")
    budget.absorb(view)
    line = str(budget.refusal())
    said = (
        ", and the next mixed-precision step (about 5 s, as long as the longest so far) would not fit in the 20 s "
        "left, the chosen model's timing (about 16 s) still to come (left undone: mixed precision: 3 of 3 steps); "
    )
    assert said in line, line


def test_a_unit_stopped_at_the_deadline_is_not_explained_by_an_earlier_misfit() -> None:
    """A refused `affords` with no skip after it (the probes' ranking) does not stick to a unit stopped later."""
    budget, now = clocked(300.0)
    with budget.spend(CANDIDATE):
        now[0] = 250.0
    assert not budget.affords(CANDIDATE)  # asked, not skipped

    def stopped() -> None:
        now[0] = 301.0
        raise DeadlineReached("the held-out drift run")

    assert budget.attempt(STEP, "mixed precision: 2 of 2 steps", stopped) is None
    assert budget.cut == ["mixed precision: 2 of 2 steps, stopped at the deadline during the held-out drift run"]
    assert budget.record()["first_undone"] is None
    assert "would not fit" not in str(budget.refusal())


def test_a_kept_failing_build_cut_short_by_the_time_says_what_was_left_undone() -> None:
    assert unfinished_note(DEEPCR_STAGE) == DEEPCR_NOTE
    assert unfinished_note({**DEEPCR_STAGE, "within_budget": True}) == ""  # it holds: the search's choice, shipped
    assert unfinished_note({"stage": "fuse"}) == "" and unfinished_note({**DEEPCR_STAGE, "time_budget": None}) == ""
    stepped = {**DEEPCR_MIXED, "steps": [{"margin": -3.0}]}
    finished = {**DEEPCR_TIME, "left_undone": [], "ran_out": False}
    assert unfinished_note({**DEEPCR_STAGE, "time_budget": finished, "mixed_precision": stepped}) == ""
    cut = {**DEEPCR_TIME, "left_undone": ["the static_qdq_compute candidate", "mixed precision: 4 of 4 steps"]}
    assert "(left undone: the static_qdq_compute candidate; mixed precision: 4 of 4 steps); give it time" in (
        unfinished_note({**DEEPCR_STAGE, "time_budget": cut, "mixed_precision": stepped})
    )
    # only the mixed-precision search's own cap stopped it: said, but more --max-search-s is not offered
    idle = unfinished_note({**DEEPCR_STAGE, "time_budget": finished})
    assert idle.endswith("(left undone: the mixed-precision search, which took no step)"), idle


def test_optimize_prints_the_note_for_a_kept_failing_build_cut_short(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import optimizer.pipeline

    def shipped(options: Any) -> Artifact:
        stages: list[dict[str, Any]] = [{"stage": "export"}, DEEPCR_STAGE]
        return Artifact(tmp_path / "model.onnx", Manifest("tiny", [], [], "int8", stages=stages))

    monkeypatch.setattr(optimizer.pipeline, "optimize", shipped)
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--keep-failing"]
    assert main([*argv, "--skip-timing", "--json"]) == 0
    assert f"quantserve: note: {DEEPCR_NOTE}\n" in capsys.readouterr().err


def test_an_output_with_its_rows_along_axis_1_is_told_so_whatever_it_holds() -> None:
    """wired-table-rec's v2 writes an int64 class map [1, batch, H, W]: no CTC logits, the same fix."""
    assert unbatched_reason("output", [1, 4, 512, 512], 4) == (
        "output 'output' has shape [1, 4, 512, 512] for 4 input rows: its rows are along axis 1 (as a time-major "
        "output's are, e.g. a CTC recognizer's logits [T, N, C]), but Triton batches requests and splits responses "
        "along axis 0; add a Transpose with perm [1, 0, 2, 3] at the end of the graph, so the output is [N, 1, 512, "
        "512], or re-export the model batch-first"
    )
