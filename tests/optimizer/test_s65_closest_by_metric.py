"""Where every INT8 candidate misses the drift budget and the user gave --metric, the closest one (what a refusal names,
what --keep-failing ships) is one whose --metric holds before one whose --metric misses, then the worst slack of any
check, and the refusal and --keep-failing choose it by one function (probe 65D: SLANet-plus's refusal named a mix
whose --metric held, 0.3889 → 0.4167, while --keep-failing shipped another at 0.3889 → 0.0417)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from optimizer.drift_checks import DriftReport, Violation, normalized_slack
from optimizer.int8_confirm import SearchConfirmation
from optimizer.int8_refusal_words import closest_candidate, closest_note, search_choice

LIMIT = 0.01  # --max-metric-drop


def _drift(output_slack: float, fp32: float | None = None, int8: float | None = None) -> DriftReport:
    """A miss on one output's check at `output_slack`, with --metric scores where given."""
    report = DriftReport(outputs={}, violations=[Violation("loc", "channel_correlation", 0.4, 0.98)])
    report.slacks.append(output_slack)
    if fp32 is not None and int8 is not None:
        drop = (fp32 - int8) / fp32
        report.user_metric = {"spec": "tabmetric:shape_acc", "fp32": fp32, "int8": int8, "relative_drop": drop,
                              "max_relative_drop": LIMIT, "higher_is_better": True}  # fmt: skip
        report.slacks.append(normalized_slack(drop, LIMIT, higher_is_better=False))
        if drop > LIMIT:
            report.violations.append(Violation("tabmetric:shape_acc", "relative drop", drop, LIMIT, False, "metric"))
    return report


def _candidate(scheme: str, drift: DriftReport, speedup: float = 1.2) -> Any:
    return SimpleNamespace(scheme=scheme, drift=drift, speedup=speedup, excluded=[], path=Path(scheme))


HELD = _candidate("static_qdq", _drift(-90.0, 0.3889, 0.4167))  # far on a padded output's checks, metric holds
MISSED = _candidate("static_qdq_compute", _drift(-3.0, 0.3889, 0.3850), 1.5)  # nearer by slack, metric missed


def test_a_candidate_whose_metric_holds_is_closer_than_one_whose_metric_misses() -> None:
    assert MISSED.drift.margin() > HELD.drift.margin()  # by the worst slack alone, the miss was the closest
    assert closest_candidate([MISSED, HELD]) is HELD
    assert closest_candidate([HELD, MISSED]) is HELD


def test_without_a_metric_the_worst_slack_still_decides() -> None:
    near, far = _candidate("a", _drift(-3.0)), _candidate("b", _drift(-90.0), 3.0)
    assert closest_candidate([far, near]) is near
    both_missed = _candidate("c", _drift(-1.0, 0.5, 0.1))
    assert closest_candidate([both_missed, MISSED]) is MISSED  # both miss the metric: the slack decides


def test_the_search_ships_the_closest_of_every_candidate_not_the_mix_alone() -> None:
    # no scheme held, the mix (from the candidate nearest by slack) missed the metric: the refusal's closest and
    # --keep-failing's model come from here, and were the mix whatever its metric
    mix = _candidate("static_qdq_compute", _drift(-2.0, 0.3889, 0.0417), 1.19)
    chosen = search_choice((None, mix), [HELD, MISSED, mix], lambda drift: drift.holds)
    assert chosen is HELD
    holding = _candidate("dynamic", DriftReport(outputs={}), 1.1)
    assert search_choice((holding, mix), [HELD, holding, mix], lambda drift: drift.holds) is holding


def test_keep_failing_on_all_rows_ships_the_model_the_refusal_would_name() -> None:
    # both held on the search's rows and missed on all of them: the refusal names the closest there, and
    # --keep-failing ships that one, not the fastest that held on the search's rows
    fast = _candidate("dynamic", DriftReport(outputs={}), 2.0)
    slow = _candidate("static_qdq", DriftReport(outputs={}), 1.2)
    on_all_rows = {fast.path: _drift(-3.0, 0.5, 0.3), slow.path: _drift(-9.0, 0.5, 0.5)}

    def confirms(candidate: Any, judged: dict[Path, Any], every: Any) -> bool:
        judged[candidate.path] = (candidate, on_all_rows[candidate.path])
        return False

    run = SimpleNamespace(
        every_row=[0] * 100,
        stage=SimpleNamespace(held_out=[0] * 10, keep_failing=True),
        state_pairs=(),
        stream_misses={},
        _accept=lambda drift: drift.holds,
        _quantizes_anything=lambda candidate: True,
        _confirms=confirms,
    )
    assert SearchConfirmation._confirmed(run, fast, [fast, slow]) is slow  # type: ignore[arg-type]


def test_the_keep_failing_note_says_the_metric_chose_it() -> None:
    note = closest_note(HELD, [HELD, MISSED], lambda candidate: "")
    assert note == (
        "kept failing: static_qdq misses the drift budget and was chosen as the closest INT8 candidate by your "
        "--metric tabmetric:shape_acc first, which it holds (0.3889 → 0.4167), then by the worst slack of the other "
        "checks, ahead of static_qdq_compute, nearer by the other checks but missing it (0.3889 → 0.3850)"
    )
    none_held = closest_note(MISSED, [MISSED], lambda candidate: "")
    assert none_held.endswith("no candidate held your --metric tabmetric:shape_acc (0.3889 → 0.3850 for this one)")
    assert closest_note(_candidate("a", _drift(-3.0)), [], lambda candidate: "") == ""  # no --metric: no note
