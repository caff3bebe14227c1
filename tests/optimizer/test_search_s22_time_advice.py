"""The out-of-time refusal offers more time only where more time may hold the budget (issue 9).

BirdNET's audio CNN ran out of its 300 s with the closest model at worst channel correlation 0.3476 < 0.98 and was
told to raise --max-search-s to 600; that cost 557 s more to reach a drift refusal at 0.8047. The verdict is judged
here on recorded figures (`SearchVerdict._refuse_unverified`), on a budget's fake clock: nothing depends on timing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import onnx
import pytest

from optimizer.activation_outliers import ActivationOutliers
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import Violation, normalized_slack
from optimizer.int8_verdict import SearchVerdict
from optimizer.search_budget import SearchBudget

BIRDNET = Violation("Identity", "channel_correlation_worst", 0.3476, 0.98)  # the 300 s search's closest


def spent_budget() -> SearchBudget:
    now = [0.0]
    budget = SearchBudget(300.0, lambda: now[0])
    now[0] = 287.0
    budget.skip("the static_qdq_7bit candidate")
    return budget


def verdict(method: str = "minmax", outlier_ratio: float = 11.1) -> SearchVerdict:
    run = SearchVerdict.__new__(SearchVerdict)
    run.budget, run.method = spent_budget(), method
    run.stage = SimpleNamespace(keep_failing=False, model_type=None)  # type: ignore[assignment]
    run.model = onnx.ModelProto()  # no encoder: no --model-type hint (`with_fusion_hint`)
    run._outliers_seen = ActivationOutliers("model/BLOCK_4-4_MULTIPLY/mul", outlier_ratio, 16)
    run.exclusions = []
    return run


def missing(violation: Violation, scheme: str = "static_qdq", kept: tuple[str, ...] = ()) -> Any:
    margin = normalized_slack(violation.value, violation.budget, violation.higher_is_better)
    drift = SimpleNamespace(holds=False, violations=[violation], outputs={}, margin=lambda: margin, advice=[])
    summary = {"scheme": scheme, "margin": margin}
    return SimpleNamespace(scheme=scheme, excluded=list(kept), drift=drift, summary=lambda: summary)


def refusal(run: SearchVerdict, chosen: Any, mixed: dict[str, Any] | None = None) -> BudgetExceeded:
    with pytest.raises(BudgetExceeded) as refused:
        run._refuse_unverified(chosen, mixed or {})
    return refused.value


def test_a_closest_model_far_from_the_budget_is_told_to_deploy_fp32_not_to_wait_longer() -> None:
    """Far, and the mixed-precision steps taken were not closing it (BirdNET at 600 s: 12 steps, still 8.8 short)."""
    stalled = {"start_margin": -31.62, "steps": [{"margin": -31.0}, {"margin": -30.5}]}
    refused = refusal(verdict(), missing(BIRDNET), stalled)
    line = str(refused)
    assert line.startswith("the INT8 search ran out of time: 287 s of its 300 s budget spent"), line
    assert "closest: static_qdq, output 'Identity': worst channel correlation 0.3476 < budget 0.98" in line, line
    assert (
        "it misses by 30× the drift the budget allows (2 mixed-precision steps closed 1.1× of that allowance), "
        "which more " in line
    )
    assert "--max-search-s" not in line and "\n" not in line, line
    assert line.endswith(
        "nothing written: deploy fp32 (or --method percentile or entropy, which clip the outliers calibration saw "
        "('model/BLOCK_4-4_MULTIPLY/mul' peaks at 11.1× its 99.9th percentile))"
    ), line
    assert refused.record["refused_for"] == "time" and refused.record["time_may_help"] is False
    assert refused.record["shortfall_in_allowed_drift"] == pytest.approx(30.5, abs=0.01)


def test_far_with_no_mixed_precision_step_taken_says_that_more_time_may_or_may_not_close_it() -> None:
    """NSNet2's denoiser (300 s at load 11): closest static_qdq at correlation 0.6991 < 0.98, 14× short, no step
    taken — told "more time is unlikely to close" and offered a looser --min-channel-correlation; with a little less
    load one mixed-precision step (27.5 s) held it at 0.9994, faithful by hand. BirdNET's 32× did not close in 12."""
    line = str(refusal(verdict(), missing(BIRDNET)))
    assert (
        "it misses by 32× the drift the budget allows and the mixed-precision search took no step before the " in line
    )
    assert "so whether more time closes it is unknown; nothing written: deploy fp32 (or --method percentile" in line
    assert line.endswith("percentile)), or give it time with --max-search-s 600"), line
    assert "looser" not in line, line


def test_no_clipping_advice_where_calibration_saw_no_outliers_or_did_not_use_min_max() -> None:
    for run in (verdict(outlier_ratio=4.2), verdict(method="percentile")):
        line = str(refusal(run, missing(BIRDNET)))
        assert line.endswith("nothing written: deploy fp32, or give it time with --max-search-s 600"), line


def test_a_near_miss_or_a_search_closing_the_gap_keeps_the_advice_to_raise_the_budget() -> None:
    near = missing(Violation("Identity", "channel_correlation_worst", 0.97, 0.98))  # 0.5× the allowed drift short
    line = str(refusal(verdict(), near))
    assert "raise the budget with --max-search-s (e.g. --max-search-s 600) or deploy fp32" in line, line
    # far at the start (31.6) but the mixed-precision steps closed 20 of it, more than the 11.6 left: time may hold it
    closing = {"start_margin": -31.62, "steps": [{"margin": -25.0}, {"margin": -11.62}]}
    refused = refusal(verdict(), missing(BIRDNET), closing)
    assert "raise the budget with --max-search-s" in str(refused) and refused.record["time_may_help"], str(refused)
    # the steps moved it, but by less than is left: far, and the line says how far they got
    stuck = {"start_margin": -31.62, "steps": [{"margin": -30.0}, {"margin": -28.0}]}
    line = str(refusal(verdict(), missing(BIRDNET), stuck))
    said = "it misses by 28× the drift the budget allows (2 mixed-precision steps closed 3.6× of that allowance)"
    assert said in line, line
    assert "--max-search-s" not in line, line


def test_a_closest_model_with_compute_nodes_kept_fp32_says_how_many() -> None:
    """HiFi-GAN's vocoder was refused at 300 s with "closest: static_qdq_7bit, … cosine mean 0.887" after its
    mixed-precision search had kept groups FP32, and at 600 s with "static_qdq_7bit misses it (… cosine mean 0.613)"
    with every node in INT8: one scheme name, two figures, no word of what differed."""
    run = verdict()
    run.exclusions = [SimpleNamespace(node="out_conv")]  # kept FP32 up front: a graph output's, not the search's
    vocoder = Violation("audio", "cosine_mean", 0.887, 0.99)
    chosen = missing(vocoder, "static_qdq_7bit", kept=("out_conv", "ups.0", "ups.1"))
    line = str(refusal(run, chosen, {"start_margin": -38.7, "steps": [{"margin": -11.3}]}))
    assert (
        "; closest: static_qdq_7bit with 2 compute nodes FP32, output 'audio': cosine mean 0.887 < budget 0.99" in line
    )
    line = str(refusal(run, missing(vocoder, "static_qdq_7bit", kept=("out_conv",))))
    assert "; closest: static_qdq_7bit, output 'audio'" in line, line
