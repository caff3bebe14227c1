"""The doubt on a classification read off raw values: coordinates whose two largest values crowd, not logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.kind_doubt import ALIKE_LOGIT_ROWS, kind_doubt
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import cosines_to_mean


def _pose(rows: int, seed: int) -> np.ndarray:
    """39 points (x, y, z in pixels, visibility, presence) in 13 clusters of 3 points 2 px apart (a hand's, a
    foot's), the clusters moving with the pose: MediaPipe's pose landmarks' 195 values, as the model lays them."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(30, 230, size=(rows, 13, 1, 5)) * 0.6 + rng.uniform(30, 230, size=(1, 13, 1, 5)) * 0.4
    points = centres + rng.normal(0, 2, size=(rows, 13, 3, 5))
    points[..., 3:] = rng.normal(0, 5, size=(rows, 13, 3, 2))  # visibility and presence: logits near 0
    return points.reshape(rows, 195).astype(np.float32)


def test_pose_landmarks_read_as_logits_are_doubted() -> None:
    landmarks = _pose(300, 0)
    assert infer_output_kinds({"Identity": landmarks}) == {"Identity": "classification"}
    rows = landmarks.astype(np.float64)
    centred = rows - rows.mean(axis=1, keepdims=True)
    assert np.median(cosines_to_mean(centred)) < ALIKE_LOGIT_ROWS  # the layout alone does not say it
    doubt = kind_doubt("Identity", "classification", landmarks)
    assert "two largest values lie" in doubt and doubt.endswith("pass --output-kind Identity=dense")


@pytest.mark.parametrize("classes", [10, 100, 1000])
def test_a_classifiers_logits_are_not_doubted(classes: int) -> None:
    rng = np.random.default_rng(classes)
    features, head = rng.normal(size=(400, 64)), rng.normal(size=(64, classes)) / 8
    logits = features @ head + 40.0  # a common offset softmax ignores
    logits[np.arange(400), rng.integers(0, classes, 400)] += 4.0  # the class each row commits to
    assert kind_doubt("logits", "classification", logits.astype(np.float32)) == ""
    assert kind_doubt("noise", "classification", rng.normal(size=(400, classes)).astype(np.float32)) == ""


def test_magikas_logits_are_not_doubted() -> None:
    """A real classifier's logits: magika's 214 file types (log of its softmax: logits up to each row's shift)."""
    magika = pytest.importorskip("magika")
    import onnxruntime as ort

    from examples.pretrained_data import make_file_bytes

    model = Path(magika.__file__).parent / "models" / "standard_v3_3" / "model.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, make_file_bytes(200, 0).arrays)
    logits = np.log(np.clip(probabilities, 1e-30, None))
    assert kind_doubt("target_label", "classification", logits) == ""
