"""A shipped INT8 build whose search ran out of time before trying everything says so (probe P, TabPFN v1).

On a busy 2-core EPYC at the default 300 s, static Q/DQ's calibration took 109 s, the dynamic and smoothed candidates
were left undone, and static shipped at 1.22× with no word on the terminal, where dynamic holds the same budget at
2.58×. Now the build gets a note naming what was left undone, and the search runs the candidate that calibrates
nothing first. Time here is the manifest's records or a fake clock that each profile advances: nothing depends on how
fast this machine runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_int8_search import FAST, VNNI, mlp

import optimizer.int8_search as int8_search
from optimizer.drift_budget import DriftBudget
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import CANDIDATES, SearchInt8
from optimizer.search_budget import SearchBudget, left_undone_note, time_cut_note, unfinished_note
from quantserve.artifact import Artifact, Manifest
from quantserve.cli import main
from quantserve.data import TensorData

# TabPFN v1 at the defaults: the calibrate stage's records as its manifest held them (build/tpfn_int8)
TABPFN_TIME = {
    "first_undone": {"kept_s": 0.0, "left_s": 45.18, "unit": "candidate", "unit_s": 83.46},
    "left_undone": ["the dynamic candidate", "the static_qdq_smooth candidate"],
    "max_search_s": 300.0,
    "overran_s": 0.0,
    "ran_out": True,
    "setup_s": 61.92,
    "spent_s": 254.9,
    "unit_s": {"candidate": 83.46, "profile": 12.0, "timing": 16.63},
}
TABPFN_STAGE = {
    "stage": "calibrate",
    "scheme": "static_qdq",
    "within_budget": True,
    "speed": {"speedup": 1.1955, "others_share": 0.899},
    "skipped": {"dynamic": "the search's time budget (300 s) was spent"},
    "mixed_precision": None,
    "time_budget": TABPFN_TIME,
}
TABPFN_NOTE = (
    "the INT8 search's time ran out before it tried everything: 255 s of its 300 s budget spent, and the next "
    "candidate (about 83 s, as long as the longest so far) would not fit in the 45 s left (left undone: the dynamic "
    "candidate; the static_qdq_smooth candidate); this model holds its drift budget, but a faster one may exist; give "
    "it time with --max-search-s 600 or run it again when the machine is idle"
)
PROFILE_S = 100.0  # fake seconds each profile takes


def test_a_build_that_holds_says_what_its_search_left_undone_for_lack_of_time() -> None:
    assert left_undone_note(TABPFN_STAGE) == TABPFN_NOTE
    assert time_cut_note(TABPFN_STAGE) == TABPFN_NOTE and unfinished_note(TABPFN_STAGE) == ""
    idle = {**TABPFN_STAGE, "speed": {"speedup": 1.2, "others_share": 0.05}}
    assert left_undone_note(idle).endswith("a faster one may exist; give it time with --max-search-s 600"), idle
    # stopped at the deadline mid-calibration, and the mixed-precision steps: named as the budget recorded them
    cut = {
        **TABPFN_TIME,
        "first_undone": None,
        "left_undone": [
            "the static_qdq_smooth candidate, stopped at the deadline during calibration: min/max ranges",
            "mixed precision: 12 of 12 steps",
        ],
        "spent_s": 300.72,
    }
    said = left_undone_note({**TABPFN_STAGE, "time_budget": cut})
    assert said.startswith(
        "the INT8 search's time ran out before it tried everything: 301 s of its 300 s budget "
        "spent (left undone: the static_qdq_smooth candidate, stopped at the deadline during "
        "calibration: min/max ranges; mixed precision: 12 of 12 steps); "
    ), said


def test_what_was_not_left_undone_for_lack_of_time_gets_no_note() -> None:
    """Candidates dropped as failing to build or for a model of 1 GiB are the stage's `skipped`, not its budget's."""
    finished = {**TABPFN_TIME, "left_undone": [], "ran_out": False, "first_undone": None}
    other_reasons = {
        "static_qdq_smooth": "a model of 1 GiB or more: SmoothQuant's rewrite holds three copies of its weights",
        "dynamic": "failed to build: ORT could not quantize it",
    }
    stage = {**TABPFN_STAGE, "time_budget": finished, "skipped": other_reasons}
    assert left_undone_note(stage) == "" and time_cut_note(stage) == ""
    assert time_cut_note({"stage": "fuse"}) == "" and time_cut_note({**TABPFN_STAGE, "time_budget": None}) == ""
    # a model that misses its budget (--keep-failing) gets the kept-failing note, not this one
    failing = {**TABPFN_STAGE, "within_budget": False}
    assert left_undone_note(failing) == "" and time_cut_note(failing) == unfinished_note(failing) != ""


@pytest.fixture
def slow_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every profile of the search takes PROFILE_S more on the budget's clock."""
    skew = [0.0]
    real = int8_search.profile_model

    def slow(*args: Any, **kwargs: Any) -> Any:
        skew[0] += PROFILE_S
        return real(*args, **kwargs)

    monkeypatch.setattr(int8_search, "profile_model", slow)
    monkeypatch.setattr(int8_search, "SearchBudget", lambda s: SearchBudget(s, lambda: time.monotonic() + skew[0]))


def _data(seed: int, scale: float, rows: int) -> TensorData:
    return TensorData({"x": (np.random.default_rng(seed).standard_normal((rows, 16)) * scale).astype(np.float32)})


def test_time_for_one_candidate_goes_to_the_one_that_calibrates_nothing(tmp_path: Path, slow_profiles: None) -> None:
    """FP32's profile and one candidate spend 200 of 250 s. Static clips the held-out data, dynamic holds: static first
    left dynamic undone and refused as out of time; dynamic first ships, saying static was left undone."""
    budget = DriftBudget(min_cosine_mean=0.99, min_cosine_worst=0.9, min_channel_correlation=0.9)
    settings = SearchSettings(max_search_s=250.0, max_probes=4, timing_repeats=1)
    search = SearchInt8(_data(5, 0.25, 128), _data(8, 2.0, 128), budget=budget, search=settings, cpu_flags=VNNI)
    record = search(mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    assert record["scheme"] == "dynamic" and record["within_budget"], record["candidates"]
    assert [c["scheme"] for c in record["candidates"]] == ["dynamic"]
    assert record["time_budget"]["left_undone"][0] == "the static_qdq candidate", record["time_budget"]
    note = record["left_undone_note"]
    assert note == left_undone_note(record) and note.startswith("the INT8 search's time ran out before it tried "), note
    assert "(left undone: the static_qdq candidate; " in note and "--max-search-s 500" in note, note


def test_every_candidate_tried_is_judged_and_recorded_in_the_planned_order(tmp_path: Path) -> None:
    """The run order changes, the choice's order (its tie-breaks, `tried[0]`) and the record's do not."""
    steps: list[str] = []
    counts: list[tuple[int, int, str]] = []
    data = TensorData({"x": np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)})
    search = SearchInt8(
        data, data, search=FAST, on_step=steps.append, on_progress=lambda *c: counts.append(c), cpu_flags=VNNI
    )
    record = search(mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    built = [step.removesuffix(" candidate") for step in steps if step.endswith(" candidate")]
    assert built[:3] == ["dynamic", "static_qdq", "static_qdq_smooth"], steps
    assert [c["scheme"] for c in record["candidates"]][:3] == ["static_qdq", "dynamic", "static_qdq_smooth"]
    assert [c for c in counts if c[2] == CANDIDATES] == [(1, 3, CANDIDATES), (2, 3, CANDIDATES), (3, 3, CANDIDATES)]
    assert record["left_undone_note"] == "" and not record["time_budget"]["left_undone"]


def test_optimize_prints_the_note_for_a_build_that_holds(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import optimizer.pipeline

    stages: list[dict[str, Any]] = [{"stage": "export"}, TABPFN_STAGE]

    def shipped(options: Any) -> Artifact:
        return Artifact(tmp_path / "model.onnx", Manifest("tiny", [], [], "int8", stages=stages))

    monkeypatch.setattr(optimizer.pipeline, "optimize", shipped)

    def argv(out: str) -> list[str]:
        return ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / out), "--skip-timing"]

    assert main([*argv("a"), "--json"]) == 0
    assert f"quantserve: note: {TABPFN_NOTE}\n" in capsys.readouterr().err
    stages[1] = {**TABPFN_STAGE, "time_budget": {**TABPFN_TIME, "left_undone": [], "ran_out": False}}
    assert main([*argv("b"), "--json"]) == 0
    assert "faster one may exist" not in capsys.readouterr().err
