"""A refusal puts each figure beside the build it was measured on and says a repeated hint once (session 68).

MediaPipe's full-range face detector (probe 68I): "static_qdq misses it (output 'Identity_1' (dense): worst channel
correlation 0.7702 …)" where static_qdq read 0.574 and 0.7702 was its closest mixed build's, "static_qdq with 84
compute nodes FP32"; and the ~300 characters of "judged per position: … --keep-failing ships the build with this miss
recorded" were said again for static_qdq_compute, in a line of ~2,000 characters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from optimizer.column_readings import position_map_doubt
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import DriftReport, Violation
from optimizer.int8_confirm import SearchConfirmation
from optimizer.int8_search import _SearchRun
from optimizer.sensitivity import EXHAUSTED

HEAD = "Identity_1"
TAIL = "--keep-failing ships the build with this miss recorded"


def _report(correlation: float, worst_position: int, *others: Violation) -> DriftReport:
    """A (300, 2304, 1) score map's channel-correlation miss, as the drift check words it (`position_map_doubt`)."""
    record = {"channel_worst": worst_position}
    hint = position_map_doubt(HEAD, "dense", (300, 2304, 1), record, ["channel_correlation_worst"])
    miss = Violation(HEAD, "channel_correlation_worst", correlation, 0.98, hint=hint)
    return DriftReport(outputs={HEAD: {"kind": "dense"}, "Identity": {"kind": "dense"}}, violations=[miss, *others])


def _candidate(scheme: str, drift: DriftReport, kept: int = 0) -> SimpleNamespace:
    return SimpleNamespace(scheme=scheme, drift=drift, excluded=[f"conv_{i}" for i in range(kept)], record={})


def _exhausted_refusal() -> str:
    others = (
        Violation(HEAD, "channel_error_worst", 0.9997, 0.25, higher_is_better=False),
        Violation(HEAD, "channel_gain_worst", 0.158, 0.1, higher_is_better=False),
        Violation("Identity", "channel_correlation_worst", 0.9053, 0.98, where="axis 2, entry 1"),
    )
    plain = _candidate("static_qdq", _report(0.574, 2118, *others))
    compute = _candidate("static_qdq_compute", _report(0.3827, 1486))
    closest = _candidate("static_qdq", _report(0.7702, 2118, *others), kept=84)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[])
    run._kept_fp32 = lambda candidate: SearchConfirmation._kept_fp32(run, candidate)  # type: ignore[arg-type]
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._refuse_exhausted(run, closest, {"stopped": EXHAUSTED}, [plain, compute, closest])  # type: ignore[arg-type]
    return str(refused.value)


def test_the_closest_mixed_builds_figure_stands_beside_that_build_not_beside_its_scheme() -> None:
    line = _exhausted_refusal()
    assert "static_qdq misses it (output" not in line, line
    closest = line.index("static_qdq with 84 compute nodes FP32")
    assert closest < line.index("0.7702") < line.index("static_qdq_compute"), line
    assert "0.3827" in line[line.index("static_qdq_compute") :], line


def test_a_hint_said_for_one_candidate_is_not_said_again_for_the_next() -> None:
    line = _exhausted_refusal()
    assert line.count(TAIL) == 1, line
    assert line.count("judged beside this, not instead") == 1, line
    # what differs is kept: each candidate's own worst position
    assert "the worst at position 2118 of 2304" in line, line
    assert "the worst at position 1486 of 2304" in line, line
    assert line.index(TAIL) < line.index("static_qdq_compute"), line  # said on its first appearance
    assert len(line) < 1400, len(line)
