"""Served answers matched request by request, for outputs whose length varies per request.

An --unbatched NMS-style model answers det [K, 6] with K its own per request; stacked, the rows of one model's
request 3 met another's request 2 wherever their K differed (cosine min 0.34 and no word that box counts
changed), or the stacked shapes differed and evaluate stopped with no verdict. Compared request by request, a
changed shape is the answer changed: a line naming how many requests and the first, judged as over budget.

A decoder whose answer runs as long as its values make it (a table decoder's [1, T, 8], T the steps to its EOS) is
joined padded with NaN to the longest (`served_answers.served_outputs`, as `infer` saves it) and cut back into each
request's own answer here (`request_answers`): evaluate had stopped at "output 'y' cannot be joined along the batch
axis" (session 66). Its requests of the reference's shape are judged by cosine, as optimize verifies such a build
(`optimizer.verify_per_request`); the others are the answer changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import Violation
from quantserve import metrics
from quantserve.runner import SHAPES_SUFFIX, RequestLog, sample_shapes

PER_REQUEST = "per request"  # the kind such an output's drift record names, as optimize's verification does


def shape_changes(reference: RequestLog | None, candidate: RequestLog | None) -> dict[str, str]:
    """{output: line} for each output whose answer shape differs from the reference's in some request; outputs
    answered one row per sample are matched row by row anyway, so they count only where their shapes differ."""
    if reference is None or candidate is None:
        return {}  # not recorded (a recurrent model runs as a stream): the stacked comparison stands
    if reference.rows != candidate.rows:
        varying = set(reference.per_request()) | set(candidate.per_request())
        varying |= set(reference.lengths_vary()) | set(candidate.lengths_vary())
        return {name: _split_differs(name, reference, candidate) for name in sorted(varying)}
    changes = {}
    for name, expected in reference.shapes.items():
        got = candidate.shapes.get(name, expected)
        if line := changed_line(name, expected, got):
            changes[name] = line
    return changes


def changed_line(name: str, expected: list[tuple[int, ...]], got: list[tuple[int, ...]], compared: bool = False) -> str:
    """The line of an output whose answer shape differs from the reference's in some request ("" in none);
    `compared`: its values were compared on the requests of the reference's shape."""
    differ = [i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    if not differ:
        return ""
    first, rest = differ[0], len(expected) - len(differ)
    values = f"its values were compared on the other {rest}" if compared and rest else "so its values are not compared"
    return (
        f"output '{name}': its shape differs from the reference's in {len(differ)} of {len(expected)} requests "
        f"(request {first + 1}: {list(got[first])} vs {list(expected[first])}): the answer changed, {values}"
    )


def varying_lengths(logs: Iterable[RequestLog | None]) -> list[str]:
    """Outputs whose length past axis 0 varies from request to request in any model's answers (a decoder's T)."""
    return sorted({name for log in logs if log is not None for name in log.lengths_vary()})


def request_answers(padded: np.ndarray, log: RequestLog, name: str, whole: bool = False) -> list[np.ndarray]:
    """Each request's own answer of output `name`, cut from the answers joined padded to the longest (NaN past each
    request's own shape, as `infer` saves them beside NAME__shapes); `whole`: each answer was made one row
    (`quantserve.runner.one_row`), as `TensorData.requests.whole` sends them."""
    answers, start = [], 0
    for shape in log.shapes[name]:
        own = shape if whole and shape[:1] != (1,) else shape[1:]
        rows = 1 if whole else (shape[0] if shape else 1)
        answers.append(padded[start : start + rows][(slice(None), *(slice(0, n) for n in own))])
        start += rows
    return answers


def per_request_record(expected: list[np.ndarray], got: list[np.ndarray]) -> dict[str, Any]:
    """One output's figures over the requests: how many kept the reference's shape, and over those the cosine of
    each request's answer with the reference's (mean and worst) and the absolute differences (NaN: none kept it)."""
    same = [(e, g) for e, g in zip(expected, got, strict=True) if e.shape == g.shape and e.size]
    cosines = [float(metrics.cosine_similarity(e.reshape(1, -1), g.reshape(1, -1))[0]) for e, g in same]
    diffs = [metrics.abs_difference(e, g) for e, g in same]
    kept = sum(e.shape == g.shape for e, g in zip(expected, got, strict=True))
    return {
        "kind": PER_REQUEST,
        "requests": len(expected),
        "requests_same_shape": kept,
        "requests_changed": len(expected) - kept,
        "cosine_mean": float(np.mean(cosines)) if cosines else None,
        "cosine_worst": min(cosines, default=None),
        "max_abs_diff": max((d[1] for d in diffs), default=float("nan")),
        "mean_abs_diff": float(np.mean([d[0] for d in diffs])) if diffs else float("nan"),
    }


def kept_share(record: dict[str, Any]) -> float:
    """The share of requests whose answer kept the reference's shape, judged against --min-sequence-agreement as
    optimize judges a build of such a decoder (`optimizer.verify_per_request`)."""
    return record["requests_same_shape"] / record["requests"] if record["requests"] else 1.0


def per_request_violations(name: str, record: dict[str, Any], budget: DriftBudget) -> list[str]:
    """The record's cosines beyond `budget`, as optimize judges an output by cosine; its changed shapes are said by
    `changed_line`."""
    checks = (("cosine_mean", budget.min_cosine_mean), ("cosine_worst", budget.min_cosine_worst))
    return [
        Violation(name, metric, record[metric], limit).line(PER_REQUEST)
        for metric, limit in checks
        if record[metric] is not None and metrics.beyond(record[metric], limit, True)
    ]


def per_request_note(name: str, record: dict[str, Any]) -> str:
    """What evaluate judged of an output whose length varies per request, and what it did not."""
    return (
        f"output '{name}' changes length from request to request: compared request by request, never joined "
        f"(its shape in each of {record['requests']} requests; its values by cosine, mean and worst, over the "
        f"{record['requests_same_shape']} of the reference's shape); per-output kinds (classes, tokens, boxes) were "
        "not judged; a --metric gets it padded with NaN beside NAME__shapes, as infer saves it"
    )


def _split_differs(name: str, reference: RequestLog, candidate: RequestLog) -> str:
    return (
        f"output '{name}': its length varies per request, and the samples went in {len(candidate.rows)} requests, "
        f"the reference's in {len(reference.rows)}: its answers cannot be matched to the reference's; evaluate "
        "with --batch-size 1"
    )


def with_shapes(outputs: Mapping[str, np.ndarray], log: RequestLog | None, varying: list[str]) -> dict[str, Any]:
    """`outputs` as a --metric gets them: each output in `varying` padded with NaN to the longest, beside
    NAME__shapes (one row a sample: its answer's shape in the padded array, `quantserve.runner.sample_shapes`), the
    form `infer` saves."""
    padded = [name for name in varying if log is not None and name in outputs]
    shapes = {
        f"{name}{SHAPES_SUFFIX}": sample_shapes(log.shapes[name], np.ndim(outputs[name]))
        for name in padded
        if log is not None
    }
    return {**outputs, **shapes}


def per_request_variant(
    model: str, output: str, expected: list[np.ndarray], got: list[np.ndarray], samples: int
) -> VariantAccuracy:
    """The headline figures of `output` compared request by request: its record (`per_request`), cosine and
    differences over the requests of the reference's shape; at the top level only where every request kept it (a
    changed answer has no difference to average: 0.0 there read as "identical")."""
    record = {"output": output, **per_request_record(expected, got)}
    if record["requests_changed"]:
        return VariantAccuracy(
            model, samples, mean_abs_diff=float("nan"), max_abs_diff=float("nan"), per_request=record
        )
    return VariantAccuracy(
        model,
        samples,
        mean_abs_diff=record["mean_abs_diff"],
        max_abs_diff=record["max_abs_diff"],
        cosine_mean=record["cosine_mean"],
        cosine_min=record["cosine_worst"],
        per_request=record,
    )


def judge_per_request(
    variants: list[VariantAccuracy],
    answers: Mapping[str, Mapping[str, list[np.ndarray]]],
    logs: Mapping[str, RequestLog | None],
    reference: str,
    budget: DriftBudget | None,
) -> None:
    """Each variant's outputs in `answers` ({model: {output: each request's answer}}) against the reference's, request
    by request: a changed shape is the answer changed (a violation naming how many requests and the first), and with
    `budget` their cosine over the others is judged and recorded in `drift`; a note says what was judged."""
    for variant in variants:
        log, expected = logs.get(variant.model), logs.get(reference)
        if variant.model == reference or log is None or expected is None or log.rows != expected.rows:
            continue  # a split that differs is `shape_changes`' line
        for name, got in answers[variant.model].items():
            record = per_request_record(answers[reference][name], got)
            line = changed_line(name, expected.shapes[name], log.shapes[name], compared=True)
            floor = budget.min_sequence_agreement if budget is not None else None
            if line and floor is not None and not metrics.beyond(kept_share(record), floor, True):
                # within --min-sequence-agreement, as optimize judged the build (session 66 review)
                variant.notes.append(f"{line}; {kept_share(record):.4g} of requests kept it, within the budget's "
                                     f"{floor:g} (--min-sequence-agreement)")  # fmt: skip
            else:
                variant.violations += [line] if line else []
            variant.notes.append(per_request_note(name, record))
            if budget is not None:
                variant.violations += per_request_violations(name, record, budget)
                variant.drift = {**(variant.drift or {}), name: record}
