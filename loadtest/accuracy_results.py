"""Accuracy results as dataclasses that save to and load from JSON: each served variant's drift from the FP32
reference, and whether it fits the budget. `loadtest.evaluator` measures them; reports render them from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.result_files import numbers_checked, read_json, write_json
from optimizer.token_values import unit_of
from quantserve.errors import QuantserveError
from quantserve.metrics import beyond

ACCURACY_FILE = "accuracy.json"


COSINE_KINDS = ("embedding", "token_embedding")  # the output kinds a per-sample cosine describes


@dataclass
class VariantAccuracy:
    """One served variant scored on labeled held-out data and compared with the reference's outputs."""

    model: str
    samples: int
    top1_agreement: float | None = None  # fraction of samples whose argmax matches the reference
    mean_abs_diff: float = 0.0
    max_abs_diff: float = 0.0
    accuracy: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    auc_roc_ovr: float | None = None
    auc_pr_ovr: float | None = None
    accuracy_drop_points: float | None = None  # (reference − this) × 100
    cosine_mean: float | None = None  # embeddings (no labels): similarity to the reference per sample
    cosine_min: float | None = None
    cosine_p01: float | None = None
    # a multitask headline output (`loadtest.evaluator_tasks`): each task's decision agreement with the reference at
    # --label-threshold, the worst (also `top1_agreement`) and its task; with 0/1 labels per task, each task's accuracy
    # (None: no row labels it) and the worst (`accuracy`: their mean)
    task_agreements: list[float] | None = None
    task_agreement_worst: float | None = None
    task_worst: int | None = None
    task_accuracies: list[float | None] | None = None
    task_accuracy_worst: float | None = None
    # every output against the reference's under the drift budget (optimizer.drift): kind + metrics per output
    drift: dict[str, dict[str, Any]] | None = None
    violations: list[str] = field(default_factory=list)  # one line per metric beyond the budget
    # agreement rates within the budget that too few rows cannot show (optimizer.drift_evidence.thin_evidence), as lines
    thin_evidence: list[str] = field(default_factory=list)
    # what the budget does not judge (optimizer.drift_evidence.neighbour_notes)
    notes: list[str] = field(default_factory=list)
    # --metric: the user's task metric on this variant's served outputs and on the reference's, and the relative drop
    user_metric: dict[str, Any] | None = None
    version: str = ""  # the model version that answered every request (pinned at the start)
    precision: str | None = None  # as its deployment recorded it in the served config (None: none recorded)
    source: str | None = None  # the source model its deployment recorded (serving.build_parameters.SOURCE_PARAMETER)
    # the in-process speed verdict its version's deploy recorded (`served_answers.served_speed_record`; None: none),
    # judged by the report's verdict as a load run's is (`loadtest.recorded_drift.served_in_process`)
    in_process: dict[str, Any] | None = None
    # the headline output compared request by request (its length follows its values, `loadtest.request_answers`):
    # its figures over the requests of the reference's shape, with how many those were and how many changed; the
    # top-level figures then stand only where no request changed (they read 1.0 and 0.0 of an answer changed in 22
    # of 40 requests, session 66)
    per_request: dict[str, Any] | None = None

    def cosine_told(self, output: str) -> bool:
        """Whether the per-sample cosine describes `output`: an embedding's (or one the drift did not judge). For
        another kind it misleads: 0.9996 beside a detector whose scores were all 0, -0.68 beside a faithful word
        segmenter's per-character emissions ("ok"); the drift rows judge those by their kind's own metrics."""
        record = (self.drift or {}).get(output)
        return not isinstance(record, dict) or record.get("kind") in COSINE_KINDS


@dataclass
class AccuracyReport:
    """Accuracy drift of each variant against an FP32 reference, and whether it fits the budget."""

    reference: str
    data: str
    output: str
    has_labels: bool
    max_accuracy_drop: float | None  # percentage points; None: no budget
    variants: list[VariantAccuracy]
    drift_budget: dict[str, float] | None = None  # the DriftBudget applied to every output; None: none
    stream: dict[str, Any] | None = None  # a recurrent model's run as one stream (loadtest.served_stream)

    def cosine_told(self, variant: VariantAccuracy) -> bool:
        """Whether `variant`'s per-sample cosine is shown (`VariantAccuracy.cosine_told`); the reference's (1 with
        itself, no drift record of its own) where the others' is: it read 1.0000 beside "–" for an ids output in
        evaluate's table, and 1.00000 beside "–" for an image output in the report's (session 53)."""
        if variant.model != self.reference:
            return bool(variant.cosine_told(self.output))
        return all(v.cosine_told(self.output) for v in self.variants if v.model != self.reference)

    def accuracy_scope(self) -> str:
        """How the headline's accuracy was measured where the drift measured it, not the headline scoring (labels it
        cannot use: per token, `variant_scores.drift_accuracies`; class ids): "by token, …" for a tagger's per-token
        record ("by position, …" over frames: `token_values.position_unit`), else "against the labels"; "" where the
        headline scored class scores or no accuracy was measured."""
        if self.has_labels or all(v.accuracy is None for v in self.variants):
            return ""
        records = [(v.drift or {}).get(self.output) for v in self.variants]
        token = [r for r in records if isinstance(r, dict) and r.get("tokens_judged") is not None]
        if not token:
            return "against the labels"
        unit = unit_of(token[0])  # a sleep stager's epochs are positions, not tokens (session 62)
        return f"by {unit[:-1]}, over the labelled {unit}"

    @property
    def over_budget(self) -> list[str]:
        """Variants whose accuracy fell by more than the budget, or with any output beyond the drift budget."""
        return [v.model for v in self.variants if self._accuracy_over(v) or v.violations]

    def _accuracy_over(self, v: VariantAccuracy) -> bool:
        limit = self.max_accuracy_drop
        return limit is not None and v.accuracy_drop_points is not None and beyond(v.accuracy_drop_points, limit, False)

    def save(self, out_dir: Path) -> Path:
        return write_json(Path(out_dir) / ACCURACY_FILE, self)

    @classmethod
    def load(cls, path: Path) -> AccuracyReport:
        data = read_json(path)
        try:
            data["variants"] = [VariantAccuracy(**v) for v in data["variants"]]
            report = cls(**data)
            for variant in report.variants:
                numbers_checked(variant)
        except KeyError as exc:
            raise QuantserveError(f"{path}: not a quantserve accuracy file (no {exc} field)") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise QuantserveError(f"{path}: not a quantserve accuracy file ({exc})") from exc
        return report


def refuse_replacing(out_dir: Path) -> None:
    """Before any request, one line where `out_dir` holds an earlier evaluation's accuracy.json: it held one
    evaluation and a second replaced it in silence (other variants, another reference), as a load run of a model
    already measured there is refused (`recording_files.refuse_replacing`)."""
    path = Path(out_dir) / ACCURACY_FILE
    if path.exists():
        raise QuantserveError(
            f"{path}: an earlier evaluation{_evaluated(path)} is saved here; give this one another --out, or remove "
            "that file to evaluate again in its place"
        )


def _evaluated(path: Path) -> str:
    """` (of m_int8 against m_fp32)`: what the saved evaluation judged; "" where the file does not say."""
    try:
        report = AccuracyReport.load(path)
    except QuantserveError:
        return ""
    judged = [v.model for v in report.variants if v.model != report.reference] or [report.reference]
    return f" (of {', '.join(judged)} against {report.reference})"
