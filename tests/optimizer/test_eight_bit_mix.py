"""Where the mixed-precision search from a 7-bit start misses, it is run again from the closest 8-bit start.

fer's emotion CNN with --method percentile (AVX2-only EPYC): static_qdq_7bit was closer at first (top-1 agreement
0.965), the mixed search from it ended short, and optimize refused with "no INT8 model holds the drift budget" while
the mixed search from the 8-bit model held at 0.9925. Run on recorded candidates: the two mixed searches are given."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from optimizer.drift_checks import DriftReport, Violation
from optimizer.int8_measure import Candidate
from optimizer.int8_search import _SearchRun
from optimizer.profile import ModelProfile
from optimizer.search_budget import SearchBudget

SEVEN_BIT = {"reduce_range_why": "7-bit weights: this CPU has no VNNI, u8×s8 saturates"}


def _candidate(scheme: str, margin: float, record: dict[str, Any] | None = None) -> Candidate:
    misses = [Violation("y", "top1_agreement", 0.9, 0.99)] if margin < 0 else []
    drift = DriftReport({}, misses, [margin])
    return Candidate(scheme, Path(f"{scheme}.onnx"), [], drift, ModelProfile(scheme, 2, 1, 1.0, []), 1.2, record or {})


def _run(mixes: dict[str, Candidate]) -> tuple[_SearchRun, list[str]]:
    run = _SearchRun.__new__(_SearchRun)
    run.stage = SimpleNamespace(search=SimpleNamespace(min_margin=0.0))  # type: ignore[assignment]
    run.budget = SearchBudget(600.0)
    started: list[str] = []

    def mixed(start: Candidate, base: list[str]) -> tuple[Candidate, dict[str, Any]]:
        started.append(start.scheme)
        return mixes[start.scheme], {"start": start.scheme}

    run._mixed_precision = mixed  # type: ignore[method-assign]
    return run, started


def test_a_missed_mix_from_seven_bits_is_tried_again_from_eight() -> None:
    seven, eight = _candidate("static_qdq_7bit", -0.3, SEVEN_BIT), _candidate("static_qdq", -0.8)
    run, started = _run({"static_qdq_7bit": _candidate("m7", -0.1, SEVEN_BIT), "static_qdq": _candidate("m8", 0.2)})
    found, record = run._mixed_precision(seven, [])
    chosen, record = run._eight_bit_mix([seven, eight], seven, found, record, [])
    assert started == ["static_qdq_7bit", "static_qdq"]
    assert chosen.scheme == "m8" and record["seven_bit_start"]["scheme"] == "static_qdq_7bit", record


def test_a_held_mix_or_an_eight_bit_start_is_not_searched_twice() -> None:
    seven, eight = _candidate("static_qdq_7bit", -0.3, SEVEN_BIT), _candidate("static_qdq", -0.8)
    run, started = _run({"static_qdq_7bit": _candidate("m7", 0.1, SEVEN_BIT), "static_qdq": _candidate("m8", -0.5)})
    found, record = run._mixed_precision(seven, [])
    assert run._eight_bit_mix([seven, eight], seven, found, record, [])[0].scheme == "m7"
    found, record = run._mixed_precision(eight, [])  # the start had 8-bit weights already
    assert run._eight_bit_mix([seven, eight], eight, found, record, [])[0].scheme == "m8"
    assert started == ["static_qdq_7bit", "static_qdq"]
