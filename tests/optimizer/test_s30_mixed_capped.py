"""The mixed-precision search's own cap grows with --max-search-s, and where that cap stopped it the refusal says so
(issue 9). deepCR's U-Net at --max-search-s 1200 stopped its mixed search at the fixed 60 s cap after 5 of 8 steps,
859 s of the budget left, and was refused by verification's generic line, as if the search had finished. Judged here
on recorded figures (`SearchVerdict._refuse_capped`), on a budget's fake clock: nothing depends on timing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from optimizer.activation_outliers import ActivationOutliers
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import Violation, normalized_slack
from optimizer.int8_measure import SearchSettings
from optimizer.int8_verdict import SearchVerdict
from optimizer.search_budget import MIXED_OUT_OF_TIME, SearchBudget

DEEPCR = Violation("crmask", "mask_iou_mean", 0.8308, 0.95)  # the closest mixed model, 5 of 8 steps taken


def test_the_mixed_search_gets_the_time_given_past_the_default() -> None:
    assert SearchSettings().mixed_cap_s() == 60.0  # the default run's bound is unchanged
    assert SearchSettings(max_search_s=120.0).mixed_cap_s() == 60.0
    assert SearchSettings(max_search_s=1200.0).mixed_cap_s() == 960.0  # it was 60 s at any budget


def _run(max_search_s: float, keep_failing: bool = False) -> SearchVerdict:
    now = [0.0]
    run = SearchVerdict.__new__(SearchVerdict)
    run.budget, run.method = SearchBudget(max_search_s, lambda: now[0]), "minmax"
    now[0] = 341.0  # 859 s of 1200 left: the whole budget did not run out
    run.stage = SimpleNamespace(keep_failing=keep_failing, search=SearchSettings(max_search_s=max_search_s))  # type: ignore[assignment]
    run._outliers_seen = ActivationOutliers("/inc/conv/conv/conv.2/Relu_output_0", 93.6, 16)
    run.exclusions = []  # none up front: the 5 nodes the closest keeps FP32 are the mixed-precision search's
    return run


def _closest(violation: Violation) -> Any:
    margin = normalized_slack(violation.value, violation.budget, violation.higher_is_better)
    drift = SimpleNamespace(holds=False, violations=[violation], outputs={}, margin=lambda: margin, advice=[])
    summary = {"scheme": "static_qdq"}
    return SimpleNamespace(scheme="static_qdq", excluded=list("abcde"), drift=drift, summary=lambda: summary)


def _mixed(stopped: str) -> dict[str, Any]:
    steps = [{"margin": m} for m in (-5.5, -4.8, -4.3, -3.9, -3.4)]
    return {"stopped": stopped, "start_margin": -13.0, "steps": steps, "kept_fp32": list("abcde"), "chosen": True}


def test_a_search_stopped_at_its_cap_is_refused_saying_so_with_the_time_that_gives_it_more() -> None:
    with pytest.raises(BudgetExceeded) as refused:
        _run(300.0)._refuse_capped(_closest(DEEPCR), _mixed(MIXED_OUT_OF_TIME))
    line = str(refused.value)
    assert line == (
        "no INT8 model holds the drift budget yet: the mixed-precision search stopped at its 60 s cap after 5 steps; "
        "closest: static_qdq with 5 compute nodes FP32, output 'crmask': mean per-sample mask IoU 0.8308 < budget "
        "0.95; nothing written: give it time with --max-search-s 600 (the time past the default goes to it) or "
        "deploy fp32"
    ), line
    assert refused.value.record["refused_for"] == "drift"


def test_no_capped_refusal_where_the_search_finished_held_or_the_user_keeps_failing() -> None:
    chosen = _closest(DEEPCR)
    _run(300.0)._refuse_capped(chosen, _mixed("every group kept FP32, the budget still missed"))
    _run(300.0)._refuse_capped(chosen, {})  # no mixed search
    _run(300.0, keep_failing=True)._refuse_capped(chosen, _mixed(MIXED_OUT_OF_TIME))


def test_a_capped_refusal_where_every_candidate_ran_slower_says_so_first() -> None:
    """DeepFilterNet3's encoder (session 51): told to give the search 600 s, and after 505 s more refused for speed
    (0.94×); its candidates had run 0.64–0.89× FP32."""
    slow = [
        SimpleNamespace(scheme="static_qdq", speedup=0.89),
        SimpleNamespace(scheme="static_qdq_compute", speedup=0.64),
    ]
    with pytest.raises(BudgetExceeded) as refused:
        _run(300.0)._refuse_capped(_closest(DEEPCR), _mixed(MIXED_OUT_OF_TIME), slow)  # type: ignore[arg-type]
    assert str(refused.value).endswith(
        "0.95; nothing written: every INT8 candidate ran slower than FP32 here (the fastest, static_qdq, 0.89×), so a "
        "mix that holds is unlikely to be faster: deploy fp32 (or give it time with --max-search-s 600)"
    ), str(refused.value)
    fast = [*slow, SimpleNamespace(scheme="dynamic", speedup=1.2)]
    with pytest.raises(BudgetExceeded, match=r"nothing written: give it time with --max-search-s 600 \(the time"):
        _run(300.0)._refuse_capped(_closest(DEEPCR), _mixed(MIXED_OUT_OF_TIME), fast)  # type: ignore[arg-type]
