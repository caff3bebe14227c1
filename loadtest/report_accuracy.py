"""The report's accuracy section: each variant's scores against the reference, and the budget line under them."""

from __future__ import annotations

import math
from typing import Any

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.budget_rows import DriftRow, drift_rows, metric_row, per_request_rows, saved_thin_evidence
from loadtest.request_answers import PER_REQUEST
from loadtest.verdict import Verdict, note_evidence
from optimizer.value_errors import VALUE_KINDS
from quantserve.metrics import beyond


def cell(value: float | int | None, digits: int = 2) -> str:
    """A table cell: "–" for a figure not measured (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def accuracy_rows(report: AccuracyReport) -> tuple[list[str], list[list[str]]]:
    header, rows = _score_rows(report)
    spec = next((v.user_metric["spec"] for v in report.variants if v.user_metric), None)
    if spec is None:
        return header, rows
    # the user's own task metric (--metric), last: what they judge the model by
    cells = [cell(v.user_metric["value"], 4) if v.user_metric else "–" for v in report.variants]
    return [*header, spec], [[*row, cell] for row, cell in zip(rows, cells, strict=True)]


def _score_rows(report: AccuracyReport) -> tuple[list[str], list[list[str]]]:
    if any(v.task_agreements is not None for v in report.variants):
        return _task_rows(report)
    if any(_per_request(v, report.output) for v in report.variants):
        return _per_request_rows(report)
    if report.has_labels:
        header = ["model", "accuracy", "drop (pts)", "precision", "recall", "F1", "AUC-ROC", "AUC-PR", "top-1 agree"]
        header += ["mean abs diff", "max abs diff"]
        rows = [
            [
                v.model,
                *(
                    cell(v.accuracy, 4),
                    cell(v.accuracy_drop_points),
                    cell(v.precision_macro, 4),
                    cell(v.recall_macro, 4),
                ),
                *(
                    cell(v.f1_macro, 4),
                    cell(v.auc_roc_ovr, 4),
                    cell(v.auc_pr_ovr, 4),
                    cell(v.top1_agreement, 4),
                ),
                *(cell(v.mean_abs_diff, 5), cell(v.max_abs_diff, 5)),
            ]
            for v in report.variants
        ]
        return header, rows
    header = ["model", "cosine mean", "cosine min", "cosine p1", "mean abs diff", "max abs diff"]
    told = [(v, report.cosine_told(v)) for v in report.variants]  # "–" where another kind's figures judge
    rows = [
        [v.model, *(cell(c if ok else None, 5) for c in (v.cosine_mean, v.cosine_min, v.cosine_p01)), *_diffs(v)]
        for v, ok in told
    ]
    scope = report.accuracy_scope()
    if not scope:
        return header, rows
    # labels only the drift could use (a tagger's per token): its accuracy, as the verdict table judged it (s56)
    by = f" ({scope.split(',')[0]})" if scope.startswith("by ") else ""
    header = [header[0], f"accuracy{by}", "drop (pts)", *header[1:]]
    rows = [
        [row[0], cell(v.accuracy, 4), cell(v.accuracy_drop_points), *row[1:]]
        for row, v in zip(rows, report.variants, strict=True)
    ]
    return header, rows


def _task_rows(report: AccuracyReport) -> tuple[list[str], list[list[str]]]:
    """A multitask output's rows (`loadtest.evaluator_tasks`): the worst task's decision agreement and which task, the
    mean over tasks; with labels per task, the tasks' mean accuracy, its drop and the worst task's accuracy. Read as a
    tagger's, it showed a cosine (no labels) beside the drift table's worst task (session 60)."""
    header = ["model", "worst task agree", "worst task", "mean task agree"]
    rows = [
        [v.model, cell(v.task_agreement_worst, 4), cell(v.task_worst), _mean(v.task_agreements)]
        for v in report.variants
    ]
    if report.has_labels:
        header += ["task accuracy (mean)", "drop (pts)", "worst task accuracy"]
        for row, v in zip(rows, report.variants, strict=True):
            row += [cell(v.accuracy, 4), cell(v.accuracy_drop_points), cell(v.task_accuracy_worst, 4)]
    rows = [[*row, *_diffs(v)] for row, v in zip(rows, report.variants, strict=True)]
    return [*header, "mean abs diff", "max abs diff"], rows


def _per_request_rows(report: AccuracyReport) -> tuple[list[str], list[list[str]]]:
    """An output compared request by request (`loadtest.request_answers`): its figures over the requests of the
    reference's shape, said beside them with how many changed. It read "– | – | – | 0.00000 | 0.00000" of an answer
    changed in 22 of 40 requests, the differences of the other 18 (session 66)."""
    header = ["model", "compared", "cosine mean", "cosine worst", "mean abs diff", "max abs diff"]
    figures = ("cosine_mean", "cosine_worst", "mean_abs_diff", "max_abs_diff")
    rows = [
        [v.model, _compared(v, report), *(cell(_per_request(v, report.output).get(f), 5) for f in figures)]
        for v in report.variants
    ]
    return header, rows


def _per_request(v: VariantAccuracy, output: str) -> dict[str, Any]:
    """`v`'s per-request record of the headline `output`: its own, else its drift record's (a file saved before
    session 66 kept only that one); {} where none."""
    record = (v.drift or {}).get(output) or {}
    return v.per_request or (record if record.get("kind") == PER_REQUEST else {})


def _compared(v: VariantAccuracy, report: AccuracyReport) -> str:
    """What a per-request row's figures were measured over; "–" where its answers were not compared."""
    record = _per_request(v, report.output)
    if not record:
        return "–"
    over = f"over {record['requests_same_shape']} of {record['requests']} requests"
    if v.model == report.reference:
        return f"{over} (the reference itself)"
    changed = record["requests"] - record["requests_same_shape"]
    return f"{over} of the reference's shape" + (f" ({changed} changed shape: the answer changed)" if changed else "")


def _mean(shares: list[float] | None) -> str:
    return cell(sum(shares) / len(shares), 4) if shares else "–"


def _diffs(v: VariantAccuracy) -> list[str]:
    return [cell(v.mean_abs_diff, 5), cell(v.max_abs_diff, 5)]


VALUE_DIFFERENCE_TITLE = "|INT8 − FP32| of each value output, in its own units (information, not budgeted)"


def value_difference_rows(report: AccuracyReport) -> tuple[list[str], list[list[str]]]:
    """Every value output's (`optimizer.value_errors.VALUE_KINDS`) mean, p95 and max |Δ| from the reference, per
    variant: the headline table scores one output, and a regression's drift rows are normalized (face-api's age head
    read 0.1096 for 1.15 years on average and 7.14 at worst beside gender's headline, session 63). No rows: none."""
    header = ["model", "output", "kind", "mean abs diff", "p95 abs diff", "max abs diff"]
    rows = [
        [v.model, output, _kind_units(record), *(_figure(record.get(key)) for key in VALUE_FIGURES)]
        for v in report.variants
        if v.model != report.reference
        for output, record in (v.drift or {}).items()
        if record.get("kind") in VALUE_KINDS and record.get("max_abs_diff") is not None
    ]
    return header, rows


VALUE_FIGURES = ("mean_abs_diff", "p95_abs_diff", "max_abs_diff")


def _figure(value: float | None) -> str:
    """Four significant figures in the output's units: fixed decimals read 0.0000 of a difference of 3e-6."""
    return "–" if value is None or math.isnan(value) else f"{float(value):.4g}"


def _kind_units(record: dict[str, Any]) -> str:
    return "angle (radians)" if record.get("kind") == "angle" else str(record.get("kind"))


def budget_line(report: AccuracyReport) -> str:
    """The budget and, per variant over it, what missed: it said "at most 1 points of accuracy drop … OVER BUDGET:
    ffdnet_int8" of a denoiser evaluated without labels (no accuracy measured) whose miss was its PSNR to FP32, and
    "No accuracy-drop budget set." above a variant that missed the drift budget."""
    drop = report.max_accuracy_drop
    over = [v for v in report.variants if v.model in report.over_budget]
    if drop is None and report.drift_budget is None and not over:
        return "No accuracy-drop budget set."
    budgets = []
    if drop is not None:
        scope = report.accuracy_scope()  # labels the drift used, per token: "the data has no labels" was false (s56)
        unmeasured = f" (measured {scope})" if scope else " (not measured: no labels that score this output)"
        unmeasured = "" if report.has_labels else unmeasured
        budgets.append(f"at most {drop:g} points of accuracy drop{unmeasured}")
    if report.drift_budget is not None:
        budgets.append("every output's drift budget")
    verdict = "OVER BUDGET: " + "; ".join(f"{v.model} ({_missed(report, v)})" for v in over) if over else None
    verdict = verdict or "all variants within budget" + _evidence_words(report)
    return f"Budget vs `{report.reference}`: {' and '.join(budgets) or 'none set'} — {verdict}."


def _evidence_words(report: AccuracyReport) -> str:
    """Which variants' rates held on rows too few to show the budget: "within budget" alone read beside the verdict's
    NOT SHOWN (session 62)."""
    judged = Verdict()
    for v in report.variants:
        if v.model != report.reference:
            note_evidence(judged, v.model, saved_thin_evidence(v.drift or {}, report.drift_budget, v.samples), "--data")
    unshown = _models(judged.not_shown)
    thin = [m for m in _models(judged.thin) if m not in unshown]
    words = [f"not shown (rows too few) for {', '.join(unshown)}"] if unshown else []
    words += [f"thin evidence for {', '.join(thin)}"] if thin else []
    return f" on the rows given; {'; '.join(words)}" if words else ""


def _models(lines: list[str]) -> list[str]:
    """The variants `note_evidence`'s lines name ("slow8: output 'probs': …"), once each, in order."""
    return list(dict.fromkeys(line.partition(": ")[0] for line in lines))


def marked_drift_rows(report: AccuracyReport, v: VariantAccuracy) -> list[DriftRow]:
    """A variant's budgeted metrics as the verdict's drift table marks them: a rate held on rows too few to show it
    reads NOT SHOWN or "ok, thin evidence" (`loadtest.verdict.note_evidence`), not "ok"."""
    rows = [
        *drift_rows(v.model, v.drift or {}, report.drift_budget),
        *per_request_rows(v.model, v.drift, report.drift_budget),
    ]
    judged = Verdict(drift=[*rows, *metric_row(v.model, v.user_metric)])
    note_evidence(judged, v.model, saved_thin_evidence(v.drift or {}, report.drift_budget, v.samples), "--data")
    return judged.drift


def _missed(report: AccuracyReport, v: VariantAccuracy) -> str:
    """What of the budget `v` missed: its accuracy drop, then each metric line beyond the drift budget."""
    drop, limit = v.accuracy_drop_points, report.max_accuracy_drop
    fell = (
        [f"accuracy fell {drop:.2f} points > {limit:g}"]
        if drop is not None
        and limit is not None
        and beyond(drop, limit, False)
        and not any("accuracy drop" in line for line in v.violations)
        else []  # the drift budget's own line of it, where an output was judged by labels, said it already
    )
    return "; ".join([*fell, *v.violations]) or "over budget"
