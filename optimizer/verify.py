"""Verify stage: the optimized model against the FP32 reference on held-out data, both in ONNX Runtime.

Every output is measured by what it is (`optimizer.drift`: class scores, embedding, sequence,
detection head, dense map) and judged against the drift budget; the user's task metric
(`--metric`) is scored on both models side by side. The record goes into `manifest.verification`:
per-output kinds and metrics, the budget, the violations and whether the budget holds. The
first output's top-1 agreement, accuracies and absolute differences stay at the top of the record
for readers of its earlier form.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.drift import DriftBudget, infer_output_kinds, measure_drift
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.user_metric import UserMetric, add_user_metric
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.runner import run_batches


class VerifyAgainstReference:
    """Compare an artifact's ONNX model with an FP32 reference ONNX on `data`, every output, batch by batch."""

    def __init__(
        self,
        reference: Path,
        data: TensorData,
        data_source: str,
        batch_size: int = 32,
        budget: DriftBudget | None = None,
        output_kinds: Mapping[str, str] | None = None,
        user_metric: UserMetric | None = None,
    ) -> None:
        self.reference = Path(reference)
        self.data = data
        self.data_source = data_source
        self.batch_size = batch_size
        self.budget = budget or DriftBudget()
        self.output_kinds = dict(output_kinds or {})
        self.user_metric = user_metric

    def __call__(self, artifact: Artifact) -> Artifact:
        artifact.manifest.verification = self.measure(artifact.path)
        return artifact

    def measure(self, candidate: Path) -> dict[str, Any]:
        """The verification record: per-output drift by kind, the budget and its verdict, over all held-out samples."""
        expected, got = self.outputs(self.reference), self.outputs(candidate)
        labels = self.data.labels
        kinds = infer_output_kinds(expected, self.output_kinds, labels=labels)
        report = measure_drift(expected, got, kinds, self.budget, labels)
        if self.user_metric is not None:
            add_user_metric(report, self.user_metric, expected, got, labels, self.budget)
        first = next(iter(expected))
        return {
            "data": self.data_source,
            **first_output_summary(expected[first], got[first], labels),
            "budget": self.budget.to_dict(),
            **report.to_dict(),
        }

    def outputs(self, path: Path) -> dict[str, np.ndarray]:
        """Every output of the model at `path` over the held-out data."""
        with OnnxRuntimeRunner(path) as runner:
            return run_batches(runner, self.data.batches(self.batch_size))


def first_output_summary(expected: np.ndarray, got: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """The record's earlier form, for the first output: samples, abs differences, top-1 agreement, accuracies."""
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    record: dict[str, Any] = {
        "samples": int(expected.shape[0]),
        "max_abs_diff": float(diff.max(initial=0.0)),
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": None,
        "accuracy": None,
        "fp32_accuracy": None,
    }
    if expected.ndim == 2 and expected.shape[1] > 1:
        ref_top1, new_top1 = expected.argmax(axis=1), got.argmax(axis=1)
        record["top1_agreement"] = float(np.mean(ref_top1 == new_top1))
        if labels is not None and labels.ndim == 1:
            record["accuracy"] = float(np.mean(new_top1 == labels))
            record["fp32_accuracy"] = float(np.mean(ref_top1 == labels))
    return record


def drift_refusal(record: Mapping[str, Any]) -> str:
    """The one line `optimize` exits with when the budget is missed: the first violation, and how many more."""
    lines = [violation["line"] for violation in record.get("violations", [])]
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    first = lines[0] if lines else "no violation recorded"
    return f"INT8 misses the drift budget: {first}{more}; nothing written (pass --keep-failing to ship anyway)"
