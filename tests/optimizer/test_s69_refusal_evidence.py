"""A refusal on few samples is called thin evidence only where more samples could undo it: not where a worst
sample's figure missed (it can only fall with more rows), nor where the user's own --metric missed, nor where a mean
missed by more than its samples' 95 % bound reaches. MediaPipe's selfie segmentation was refused at mask IoU mean
0.8212 (budget 0.95), worst-sample IoU 0 and a --metric 20 % down on 240 rows, and told "this refusal rests on only
240 held-out samples (thin evidence …)" (session 69).

And a refusal says the drift is in the compute nodes too only where the scheme quantizing them alone shows it: the
MediaPipe face and palm detectors' static_qdq_compute, every compute node then kept FP32, still missed (its Q/DQ on
Relu outputs feeding Pad, MaxPool and Add stayed), yet the line said "and in the compute nodes too
(static_qdq_compute quantizes them alone)" (session 69)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_checks import Violation
from optimizer.few_samples import few_samples_refusal_words
from optimizer.int8_confirm import SearchConfirmation
from optimizer.int8_search import _SearchRun
from optimizer.sensitivity import EXHAUSTED


def _mask_refusal(violations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "samples": 240,
        "budget": DriftBudget().to_dict(),
        "holds": False,
        "outputs": {"mask": {"kind": "soft_mask", "mask_iou_mean": 0.8212, "mask_iou_worst": 0.0}},
        "violations": violations,
        "thin_evidence": [],
    }


MEAN = {"output": "mask", "metric": "mask_iou_mean", "value": 0.8212, "budget": 0.95}
WORST = {"output": "mask", "metric": "mask_iou_worst", "value": 0.0, "budget": 0.9}
METRIC = {"output": "mp:mask_iou", "metric": "relative_drop", "value": 0.2037, "budget": 0.01, "scope": "metric"}


NEAR = {**MEAN, "value": 0.948}  # within what 240 samples can show of 0.95 (its 95 % bound reaches past it)
TOP1 = {"output": "label", "metric": "top1_agreement", "value": 0.9867, "budget": 0.99}  # 0.9867 on 240 rows: thin


def test_a_mean_missed_within_its_samples_bound_is_still_called_thin() -> None:
    assert few_samples_refusal_words(_mask_refusal([NEAR])).startswith("this refusal rests on only 240 held-out")
    assert few_samples_refusal_words(_mask_refusal([NEAR, TOP1])).startswith("this refusal rests on only 240")


def test_a_mean_missed_by_more_than_its_samples_can_show_is_no_thin_evidence() -> None:
    assert few_samples_refusal_words(_mask_refusal([MEAN])) == ""  # 0.8212 on 240 samples: 0.95 is out of reach
    assert few_samples_refusal_words(_mask_refusal([NEAR, {**TOP1, "value": 0.9}])) == ""
    error = {"output": "mask", "metric": "channel_error_worst", "value": 1.239, "budget": 0.25}
    assert few_samples_refusal_words(_mask_refusal([NEAR, {**error, "higher_is_better": False}])) == ""


def test_a_worst_sample_floor_missed_is_no_thin_evidence() -> None:
    assert few_samples_refusal_words(_mask_refusal([MEAN, WORST])) == ""


def test_the_users_metric_missed_is_no_thin_evidence() -> None:
    assert few_samples_refusal_words(_mask_refusal([METRIC, MEAN])) == ""


def _missing(scheme: str, value: float, kept: int = 0) -> SimpleNamespace:
    violation = Violation("classificators", "channel_correlation_worst", value, 0.98)
    drift = SimpleNamespace(
        holds=False, violations=[violation], outputs={}, margin=lambda: value - 0.98, advice=[], user_metric=None
    )
    excluded = [f"conv_{i}" for i in range(kept)]
    return SimpleNamespace(scheme=scheme, drift=drift, summary=dict, speedup=1.07, excluded=excluded, record={})


CLAUSE = "and in the compute nodes too"


def _nothing_in_int8(from_scheme: str) -> str:
    closest = _missing("static_qdq_compute", -0.02255)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[], _quantizes_anything=bool)
    mixed = {"from_scheme": from_scheme, "result": {"scheme": from_scheme, "holds": False}}
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._nothing_in_int8(run, [_missing("static_qdq", 0.3), closest], mixed)  # type: ignore[arg-type]
    return str(refused.value)


def test_the_compute_only_schemes_miss_is_not_blamed_on_the_compute_nodes_where_its_all_fp32_mix_missed() -> None:
    line = _nothing_in_int8("static_qdq_compute")
    assert "still missed it with every compute node kept FP32 in turn: the drift is in the quantized data" in line
    assert CLAUSE not in line and "quantizes them alone" not in line, line
    # the mix started from every op type's Q/DQ: static_qdq_compute's own miss still tells the compute nodes apart
    assert f"{CLAUSE}: static_qdq_compute, which quantizes them alone, misses it" in _nothing_in_int8("static_qdq")


def test_a_search_exhausted_from_the_compute_only_scheme_blames_the_data_movement_alone() -> None:
    compute = _missing("static_qdq_compute", -0.02255)
    closest = _missing("static_qdq_compute", 0.656, kept=37)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), exclusions=[])
    run._kept_fp32 = lambda candidate: SearchConfirmation._kept_fp32(run, candidate)  # type: ignore[arg-type]
    mixed = {"stopped": EXHAUSTED, "from_scheme": "static_qdq_compute"}
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._refuse_exhausted(run, closest, mixed, [_missing("static_qdq", 0.3), compute, closest])  # type: ignore[arg-type]
    assert "the drift is in the quantized data movement between them;" in str(refused.value), str(refused.value)
    assert CLAUSE not in str(refused.value)
