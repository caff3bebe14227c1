"""The user's task metric (`--metric`) on every served variant beside the reference, judged as `optimize` judges it.

A function called with labels=None (the data file has none) says so once, beside each variant; one that then scored
the reference and a variant alike showed nothing about the variant and is recorded as not scored
(`optimizer.user_metric.MetricComparison.scored`): a macro-F1's 0 → 0 read as a drop of 0 within budget (session 59).
A variant the function scores NaN or infinite (a correlation of answers that are all one value), or raises on (sklearn
on such answers), fails the metric with the reason, the others still judged: evaluate had stopped with exit 2, as
optimize's search had (sessions 60 and 61).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import (
    MetricComparison,
    UserMetric,
    compare_user_metric,
    metric_notes,
    metric_violation,
    unscored_words,
)
from quantserve import metrics


def score_user_metric(
    variants: list[VariantAccuracy],
    outputs: dict[str, dict[str, np.ndarray]],
    reference: str,
    metric: UserMetric,
    labels: np.ndarray | None,
    budget: DriftBudget | None,
) -> None:
    """The user's task metric on every variant's served outputs beside the reference's; with `budget`, a relative
    drop beyond `max_metric_drop` is a violation like any output's (the same rule `optimize` applies)."""
    compared = _compared(variants, outputs, reference, metric, labels)
    others = [c.scored for model, c in compared.items() if model != reference]
    limit = budget.max_metric_drop if budget is not None else None
    for variant in variants:
        scored = compared[variant.model].scored if variant.model != reference else labels is not None or any(others)
        variant.user_metric = _record(compared[variant.model], scored, limit, metric, labels)
        if variant.model == reference:
            continue
        variant.notes.extend(metric_notes(variant.user_metric))
        unscored = compared[variant.model].unscored
        if unscored:  # no drop to weigh: it fails the metric, said with why
            failed = f"metric '{metric.spec}': {unscored_words(unscored, outputs[variant.model], 'variant')}"
            variant.user_metric.update(relative_drop=None, failed=failed)
            words = f"{failed}; it fails the metric"
            (variant.violations if limit is not None else variant.notes).append(words)
            continue
        drop = compared[variant.model].relative_drop
        if scored and limit is not None and metrics.beyond(drop, limit, False):
            variant.violations.append(metric_violation(metric.spec, drop, limit).line())


def _compared(
    variants: list[VariantAccuracy],
    outputs: dict[str, dict[str, np.ndarray]],
    reference: str,
    metric: UserMetric,
    labels: np.ndarray | None,
) -> dict[str, MetricComparison]:
    """Every variant's score beside the reference's, by model; a variant the metric scores NaN or raises on is
    `unscored` (it fails the metric), while the reference's own NaN or raise is one error line: it judges nothing."""
    expected, higher = metric.score(outputs[reference], labels)  # once: the user's function may be slow
    compared = {
        v.model: compare_user_metric(metric, outputs[reference], outputs[v.model], labels, (expected, higher))
        for v in variants
        if v.model != reference
    }
    compared[reference] = MetricComparison(metric.spec, expected, expected, higher, labels is not None)
    return compared


def _record(
    compared: MetricComparison, scored: bool, limit: float | None, metric: UserMetric, labels: np.ndarray | None
) -> dict[str, Any]:
    """A variant's metric record in accuracy.json; `relative_drop` None where not scored."""
    return {
        "spec": metric.spec,
        "value": compared.candidate,
        "reference": compared.reference,
        "higher_is_better": compared.higher_is_better,
        "relative_drop": compared.relative_drop if scored else None,
        "max_relative_drop": limit,
        **({} if scored else {"scored": False}),
        **({} if labels is not None else {"no_labels": metric.no_labels_note()}),
    }
