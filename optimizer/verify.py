"""Verify stage: the optimized model against the FP32 reference on held-out data, both in ONNX Runtime.

Reports top-1 agreement and max/mean absolute difference on the first output, and task accuracy for
both models where the data has labels; the result goes into `manifest.verification`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.runner import run_batches


class VerifyAgainstReference:
    """Compare an artifact's ONNX model with an FP32 reference ONNX on `data`, batch by batch."""

    def __init__(self, reference: Path, data: TensorData, data_source: str, batch_size: int = 32) -> None:
        self.reference = Path(reference)
        self.data = data
        self.data_source = data_source
        self.batch_size = batch_size

    def __call__(self, artifact: Artifact) -> Artifact:
        artifact.manifest.verification = self.measure(artifact.path)
        return artifact

    def measure(self, candidate: Path) -> dict[str, Any]:
        """The verification record: agreement, differences and accuracies over all held-out samples."""
        expected, got = self._outputs(self.reference), self._outputs(candidate)
        return verification_record(expected, got, self.data.labels, self.data_source)

    def _outputs(self, path: Path) -> np.ndarray:
        runner = OnnxRuntimeRunner(path)
        with runner:
            name = runner.output_names()[0]
            return run_batches(runner, self.data.batches(self.batch_size))[name]


def verification_record(
    expected: np.ndarray, got: np.ndarray, labels: np.ndarray | None, data_source: str
) -> dict[str, Any]:
    """Pure metric math over the reference and candidate outputs of the first model output."""
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    record: dict[str, Any] = {
        "data": data_source,
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
