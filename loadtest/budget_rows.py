"""The verdict's drift table: a row per budgeted metric of each output of an INT8 variant, against its budget.

From a build's manifest (`report --build`) or evaluate's accuracy.json alike: the metrics each output's kind is
judged by (`optimizer.drift_checks`), values NaN or infinite where FP32 is finite, and the user metric's relative
drop (`--metric`); and the thin evidence of a saved drift record, found again as evaluate found it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from loadtest.request_answers import PER_REQUEST, kept_share
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import BUDGETED, CHECKS, DriftReport
from optimizer.drift_evidence import thin_evidence


@dataclass(frozen=True)
class DriftRow:
    """One budgeted metric of one output of one INT8 variant, against its budget."""

    variant: str
    output: str
    kind: str
    metric: str
    value: float
    budget: float | None
    higher_is_better: bool
    evidence: str = ""  # its cell where held on rows too few to show it (`note_evidence`): NOT_SHOWN or THIN_CELL

    @property
    def holds(self) -> bool:
        if self.budget is None:
            return True
        return self.value >= self.budget if self.higher_is_better else self.value <= self.budget

    def cells(self) -> list[str]:
        """variant, output, kind, metric, value, budget (with its direction), ok/MISSED: one table row."""
        budget = "–" if self.budget is None else f"{'≥' if self.higher_is_better else '≤'} {self.budget:g}"
        verdict = (self.evidence or "ok") if self.holds else "MISSED"
        return [self.variant, self.output, self.kind, self.metric, f"{self.value:.4g}", budget, verdict]


def drift_rows(variant: str, outputs: dict[str, dict[str, Any]], budget: dict[str, float] | None) -> list[DriftRow]:
    """The budgeted metrics of every output (kind decides which), each with its budget; first, values NaN or
    infinite where FP32 is finite, always a miss (the table read "ok" beside a refusal for them)."""
    rows = []
    for output, record in outputs.items():
        kind = str(record.get("kind", "?"))
        if broken := record.get("nonfinite_values"):
            rows.append(DriftRow(variant, output, kind, "nonfinite_values", float(broken), 0, False))
        for metric in BUDGETED.get(kind, ()):
            if record.get(metric) is None:
                continue
            _, budget_field, higher = CHECKS[metric]
            limit = (budget or {}).get(budget_field)
            rows.append(DriftRow(variant, output, kind, metric, float(record[metric]), limit, higher))
    return rows


def metric_row(variant: str, record: dict[str, Any] | None) -> list[DriftRow]:
    """The user metric's relative drop (`--metric`) as a budgeted row, where one was scored."""
    if not record or record.get("relative_drop") is None:
        return []
    limit = record.get("max_relative_drop")
    return [
        DriftRow(variant, str(record["spec"]), "metric", "relative drop", float(record["relative_drop"]), limit, False)
    ]


def saved_thin_evidence(outputs: dict[str, dict[str, Any]], budget: dict[str, float] | None, rows: int) -> list[Any]:
    """`optimizer.drift_evidence.thin_evidence` of a variant's saved drift record (accuracy.json keeps only its
    lines), as evaluate found it: the same record, budget and rows."""
    if not budget or not outputs:
        return []
    known = {f.name for f in fields(DriftBudget)}
    limits: dict[str, Any] = {name: value for name, value in budget.items() if name in known}  # saved: no gates
    drift_budget = DriftBudget(**limits)
    return thin_evidence(DriftReport(dict(outputs)), drift_budget, rows)


def per_request_rows(model: str, drift: dict[str, Any] | None, budget: dict[str, float] | None) -> list[DriftRow]:
    """Each output of `model`'s drift compared request by request, as budgeted rows: the share of requests that
    kept the reference's shape (--min-sequence-agreement), then its cosine mean and worst over the others, that
    basis in its kind. evaluate's drift tables (printed and the report's verdict) had no row of them (session 66)."""
    rows = []
    for output, record in (drift or {}).items():
        if record.get("kind") != PER_REQUEST:
            continue
        kind = (
            f"{PER_REQUEST} ({record['requests_same_shape']} of {record['requests']} requests of the reference's shape)"
        )
        limit = (budget or {}).get("min_sequence_agreement")
        rows.append(DriftRow(model, output, kind, "share_same_shape", kept_share(record), limit, True))
        for metric in ("cosine_mean", "cosine_worst"):
            if record.get(metric) is not None:
                limit = (budget or {}).get(f"min_{metric}")
                rows.append(DriftRow(model, output, kind, metric, float(record[metric]), limit, True))
    return rows
