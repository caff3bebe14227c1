from __future__ import annotations

from pathlib import Path

import numpy as np

from optimizer.export import export_onnx
from optimizer.source import load_source
from optimizer.verify import VerifyAgainstReference, verification_record
from quantserve.data import load_npz


def test_record_math() -> None:
    expected = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.1]])
    got = np.array([[0.9, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 0.1]])
    record = verification_record(expected, got, np.array([0, 1, 1, 0]), "held-out")
    assert record["top1_agreement"] == 0.75
    assert record["max_abs_diff"] == 1.0
    assert np.isclose(record["mean_abs_diff"], (0.1 + 1.0 + 1.0) / 8)
    assert record["fp32_accuracy"] == 0.75  # reference top-1: 0, 1, 0, 0
    assert record["accuracy"] == 1.0  # candidate top-1: 0, 1, 1, 0
    assert record["samples"] == 4


def test_no_labels_no_accuracy() -> None:
    record = verification_record(np.eye(3), np.eye(3), None, "x")
    assert record["top1_agreement"] == 1.0
    assert record["accuracy"] is None and record["fp32_accuracy"] is None


def test_model_against_itself(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    artifact = export_onnx(load_source(tiny_onnx), tmp_path / "m.onnx")
    data = load_npz(calib_npz, artifact.manifest.inputs)
    verified = VerifyAgainstReference(artifact.path, data, "calib.npz", batch_size=7)(artifact)
    record = verified.manifest.verification
    assert record is not None
    assert (record["samples"], record["top1_agreement"], record["max_abs_diff"]) == (40, 1.0, 0.0)
    assert record["accuracy"] == record["fp32_accuracy"]
