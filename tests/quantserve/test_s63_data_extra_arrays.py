"""Data arrays that are not the model's inputs. Probe D (session 63): `infer --data eval.npz`, the file holding `x` and
its class ids saved as `label`, was refused "arrays ['label', 'x'] do not match the model inputs ['x']", naming neither
the array too many nor that labels go in `labels` (optimize, evaluate and loadtest refuse the file alike: every command
reads data through `check_against`). The refusal now names the extra and missing arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import TensorSpec
from quantserve.data import check_against, load_npz
from quantserve.errors import QuantserveError

X = TensorSpec("x", "float32", ("batch", 16))


def _refusal(path: Path, inputs: list[TensorSpec], **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(QuantserveError) as refused:
        check_against(path, load_npz(path), inputs)
    return str(refused.value)


def test_a_label_array_is_named_as_the_extra_one(tmp_path: Path) -> None:
    path = tmp_path / "eval.npz"
    said = _refusal(path, [X], x=np.zeros((4, 16), np.float32), label=np.zeros(4, np.int64))
    assert said == (
        f"{path}: arrays ['label', 'x'] do not match the model inputs ['x']: 'label' is not one of them (class ids "
        "go in an array named 'labels')"
    )


def test_extra_and_missing_arrays_are_named(tmp_path: Path) -> None:
    path = tmp_path / "two.npz"
    y = TensorSpec("mask", "float32", ("batch", 16))
    said = _refusal(path, [X, y], x=np.zeros((4, 16), np.float32), extra=np.zeros((4, 2), np.float32))
    assert said == (
        f"{path}: arrays ['extra', 'x'] do not match the model inputs ['mask', 'x']: 'extra' is not one of them; "
        "'mask' is missing"
    )


def test_names_with_nothing_in_common_keep_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    said = _refusal(path, [X], y=np.zeros((4, 16), np.float32))
    assert said == f"{path}: arrays ['y'] do not match the model inputs ['x']"
