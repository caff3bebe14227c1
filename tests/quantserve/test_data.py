"""Data files: labels that could only be scored as garbage, and string inputs, are one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, as_sent, check_against, load_npz
from quantserve.errors import QuantserveError

X = np.zeros((6, 4), dtype=np.float32)


def _saved(tmp_path: Path, labels: np.ndarray, **arrays: np.ndarray) -> Path:
    path = tmp_path / "held.npz"
    np.savez(path, **(arrays or {"x": X}), labels=labels)
    return path


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array(["cat"] * 6), "array 'labels' has dtype <U3; labels must be integer class ids (e.g. int64)"),
        (np.arange(6, dtype=np.float32), "array 'labels' has dtype float32; labels must be integer class ids"),
        (np.full(6, np.nan), "array 'labels' has dtype float64; labels must be integer class ids"),
        (np.eye(6, 10, dtype=np.float32), "array 'labels' has dtype float32; labels must be integer class ids"),
        (np.array([0, 1, -1, 2, -3, 0]), "array 'labels' has 2 negative class id(s) (first: -1 in row 2)"),
        (np.array(3), "no labels for 6 samples (array 'labels', shape ())"),
        (np.arange(2), "2 labels for 6 samples (array 'labels', shape (2,))"),
    ],
)
def test_labels_that_cannot_be_scored_are_one_line_naming_the_file(
    tmp_path: Path, labels: np.ndarray, message: str
) -> None:
    path = _saved(tmp_path, labels)
    with pytest.raises(QuantserveError) as error:
        load_npz(path)
    assert str(error.value).startswith(f"{path}: {message}") and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 3, 1, 2, 0, 9], dtype=np.int64),  # class ids (their range is checked against an output's classes)
        np.array([[4, 1, -100], [2, -100, -100]] * 3, dtype=np.int32),  # per-token, Hugging Face's -100 unlabelled
        np.ones((6, 5, 5), dtype=np.uint8),  # a mask for a --metric (examples.pretrained's text detector)
    ],
)
def test_integer_labels_per_sample_per_token_or_per_pixel_load(tmp_path: Path, labels: np.ndarray) -> None:
    data = load_npz(_saved(tmp_path, labels))
    assert data.labels is not None and data.labels.shape == labels.shape


def test_boolean_labels_are_class_ids_0_and_1(tmp_path: Path) -> None:
    data = load_npz(_saved(tmp_path, np.array([True, False] * 3)))
    assert data.labels is not None and data.labels.dtype == np.int64 and data.labels.tolist() == [1, 0] * 3


@pytest.mark.parametrize("dtype", ["bytes", "object"])  # Triton's metadata; an ONNX STRING input's manifest
@pytest.mark.parametrize("strings", [np.array([[b"a"], [b"bb"]]), np.array([["a"], ["héllo"]])])
def test_bytes_or_str_arrays_fit_a_string_input(dtype: str, strings: np.ndarray) -> None:
    check_against("s.npz", TensorData({"x": strings}), [TensorSpec("x", dtype, ("batch", 1))])


def test_a_number_array_for_a_string_input_says_what_is_accepted() -> None:
    spec = TensorSpec("x", "bytes", ("batch", 1))
    with pytest.raises(QuantserveError) as error:
        check_against("s.npz", TensorData({"x": np.zeros((2, 1), np.float32)}), [spec])
    assert str(error.value) == (
        "s.npz: input 'x' has dtype float32, the model expects strings (Triton BYTES): "
        "a numpy bytes (S) or str (U, sent as UTF-8) array"
    )


def test_str_arrays_are_sent_as_utf8_bytes() -> None:
    sent = as_sent(np.array([["a"], ["héllo"]]))
    assert sent.dtype.kind == "S" and sent[1, 0] == "héllo".encode()
    numbers = np.arange(3)
    assert as_sent(numbers) is numbers


def test_float_labels_are_truth_for_a_metric_alone(tmp_path: Path) -> None:
    """Float truth (keypoints in pixels) had to be scaled to integers by hand to reach a --metric."""
    keypoints = np.random.default_rng(0).uniform(0, 320, (6, 4)).astype(np.float32)
    path = tmp_path / "kp.npz"
    np.savez(path, x=np.zeros((6, 3), np.float32), labels=keypoints)
    with pytest.raises(QuantserveError, match="float truth such as keypoints in pixels is read only with a --metric"):
        load_npz(path)
    data = load_npz(path, float_truth=True)
    assert data.labels is None  # no class metric reads them
    np.testing.assert_array_equal(data.metric_truth, keypoints)  # type: ignore[arg-type]
    np.testing.assert_array_equal(data.take(2, 4).metric_truth, keypoints[2:4])  # type: ignore[arg-type]
    np.testing.assert_array_equal(data.take_rows(np.array([5, 0])).truth, keypoints[[5, 0]])  # type: ignore[arg-type]
    saved = load_npz(data.save(tmp_path / "again.npz"), float_truth=True)
    np.testing.assert_array_equal(saved.truth, keypoints)  # type: ignore[arg-type]
    np.savez(path, x=np.zeros((6, 3), np.float32), labels=keypoints[:5])
    with pytest.raises(QuantserveError, match="5 labels for 6 samples"):
        load_npz(path, float_truth=True)
    ids = tmp_path / "ids.npz"
    np.savez(ids, x=np.zeros((6, 3), np.float32), labels=np.arange(6))
    assert load_npz(ids, float_truth=True).labels is not None  # integer labels stay class ids


def test_float_truth_with_no_finite_value_is_refused_and_missing_values_are_the_metrics(tmp_path: Path) -> None:
    """All-NaN truth with a --metric: both models scored 0 against nothing, "relative drop 0", PASS (session 30).
    NaN in some rows may mark missing truth (a keypoint not visible): the metric reads it, as before."""
    path = tmp_path / "nan.npz"
    np.savez(path, x=np.zeros((4, 3), np.float32), labels=np.full((4, 2), np.nan, np.float32))
    with pytest.raises(QuantserveError) as refused:
        load_npz(path, float_truth=True)
    assert str(refused.value) == (
        f"{path}: array 'labels' holds no finite value (all 8 NaN or infinite): there is no truth for the --metric "
        "to score against"
    )
    some = np.ones((4, 2), np.float32)
    some[1, 0] = np.nan
    np.savez(path, x=np.zeros((4, 3), np.float32), labels=some)
    assert np.isnan(load_npz(path, float_truth=True).truth[1, 0])  # type: ignore[index]
