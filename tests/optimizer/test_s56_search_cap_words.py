"""A refusal where the mixed-precision search's time cap cut it short says so, with the machine's load and the time
that gives it more before "deploy fp32" (session 56). PickerXL's phase picker, on 2 cores at load 15, was told "it
holds only with every compute node FP32 as far as the search went: its time ran out with 11 of the 11 groups kept FP32
before the last not tried back in INT8 … deploy fp32" for a 0.9793-vs-0.98 miss, and "deploy fp32" again at the end;
the same command shipped 53 % of its MACs in INT8 once the load fell, and 89 % (1.51×) with --max-search-s 600. Its
P-decision miss read "missed: --min-box-agreement 0.95" on a probability trace without boxes.
Judged on recorded figures: nothing here depends on timing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from optimizer.activation_outliers import ActivationOutliers
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import Violation
from optimizer.int8_refusal_words import search_cut_words
from optimizer.int8_search import _SearchRun
from optimizer.refusal_figures import miss_words

PICKER = Violation("probs", "channel_correlation_worst", 0.9793, 0.98)


def _capped(others_share: float | None = 0.7, returned: int = 0) -> dict[str, Any]:
    """The search's record: 12 groups kept FP32 one at a time, the last holding, then its 60 s cap reached with
    `returned` of the first 11 tried back in INT8."""
    steps = [{"margin": -0.5, "holds": False}] * 11 + [{"margin": 0.3, "holds": True}]
    return {
        "result": {"holds": True},
        "steps": steps,
        "returned_to_int8": [{"holds": False}] * returned,
        "stopped": "budget holds",
        "cut_by": "cap",
        "cap_s": 60.0,
        "max_search_s": 300.0,
        "step_s": 5.2,
        "others_share": others_share,
    }


def test_a_capped_search_names_the_cap_the_load_and_more_time_before_deploy_fp32() -> None:
    said, advice = search_cut_words(_capped())
    line = said + "; " + advice
    assert "stopped at its 60 s cap (of --max-search-s 300) after trying 0 of the first 11 back in INT8" in said, said
    assert "on a busy machine (other processes used 70% of the cores while it searched)" in said, said
    assert "before the last not tried back" not in line
    assert line.count("deploy fp32") == 1 and advice.endswith("or deploy fp32"), advice
    more = advice.index("--max-search-s 600")
    assert more < advice.index("run it again when the machine is idle") < advice.index("deploy fp32"), advice
    assert "11 more steps of about 5 s each" in advice, advice


def test_an_idle_search_is_not_told_to_wait_for_an_idle_machine_and_a_finished_one_says_nothing() -> None:
    said, advice = search_cut_words(_capped(others_share=0.05))
    assert "other processes used 5% of the cores" in said and "busy" not in said, said
    assert "idle" not in advice and advice.count("deploy fp32") == 1, advice
    assert search_cut_words(_capped(returned=11)) == ("", "")  # every group was tried back: the search finished
    assert search_cut_words({**_capped(), "stopped": "search time budget spent"}) == ("", "")


def test_the_refusal_line_and_its_method_advice_say_deploy_fp32_once() -> None:
    closest = SimpleNamespace(
        scheme="static_qdq",
        speedup=1.5,
        drift=SimpleNamespace(
            holds=False,
            violations=[PICKER],
            outputs={"probs": {"kind": "dense"}},
            margin=lambda: -0.1,
            advice=[],
            user_metric=None,
        ),
        summary=dict,
    )
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[], _quantizes_anything=bool)
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._nothing_in_int8(run, [closest], _capped())  # type: ignore[arg-type]
    line = str(refused.value)
    assert "0.9793 < budget 0.98" in line and "60 s cap" in line and "70% of the cores" in line, line
    assert line.count("deploy fp32") == 1 and refused.value.record["time_may_help"], line
    calm = SimpleNamespace(_outliers=lambda: ActivationOutliers("/Relu_17_output_0", 3.9, 16), method="minmax")
    hint = _SearchRun._outlier_record(calm, time_may_help=True)["method_hint"]  # type: ignore[arg-type]
    assert "unlikely to hold it" in hint and "deploy fp32" not in hint, hint


def test_a_clear_positives_miss_on_a_probability_trace_says_what_it_measured() -> None:
    decisions = Violation("probs", "anchor_decision_agreement", 0.8605, 0.95)
    verification = {"violations": [PICKER.to_dict(), decisions.to_dict()], "outputs": {"probs": {"kind": "dense"}}}
    words = miss_words(verification)
    assert words == (
        "missed: --min-channel-correlation 0.98, "
        "--min-box-agreement 0.95 (clear positives of output 'probs' agreed: 0.8605)"
    ), words
