"""Arrays that disagree on axis 0 but agree on another axis: the refusal names that axis as the likely batch and
both routes out (probe 57, TabPFN's (seq, batch, features) x (208, 4, 100) with y (200, 4))."""

from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import TensorSpec
from quantserve.data import load_npz
from quantserve.errors import QuantserveError

TABPFN = [TensorSpec("x", "float32", ("seq", "batch", 100)), TensorSpec("y", "float32", ("train", "batch"))]


def _tabpfn(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.random((208, 4, 100), np.float32), "y": rng.random((200, 4), np.float32)}


def test_a_batch_on_axis_1_is_named_with_both_routes(tmp_path: Path) -> None:
    path = tmp_path / "raw.npz"
    np.savez(path, **_tabpfn(np.random.default_rng(0)))  # type: ignore[arg-type]
    for whole in (False, True):  # the same refusal with --unbatched: the file still has the inputs' rank
        with pytest.raises(QuantserveError) as refused:
            load_npz(path, TABPFN, whole=whole)
        assert str(refused.value) == (
            f"{path}: arrays disagree on the number of samples, read as axis 0 of each: 'x' 208 (axis 0 of shape "
            "(208, 4, 100)), 'y' 200 (axis 0 of shape (200, 4)) (samples are rows of axis 0 of every input, as "
            "Triton's dynamic batching stacks them; the file holds the model's inputs and 'labels' alone); they "
            "agree on axis 1 (4 each), which may be the batch: quantserve reads the batch as axis 0 of every input "
            "and output, so either wrap the model to take and return the batch on axis 0 (moving it to axis 1 and "
            "back inside) and save each array as np.moveaxis(a, 1, 0), or build with --unbatched and save whole "
            "requests, one axis more than the model's inputs (each data[i] one request: a[None] for the one here)"
        )


def test_both_routes_named_load(tmp_path: Path) -> None:
    arrays = _tabpfn(np.random.default_rng(1))
    moved = tmp_path / "moved.npz"
    np.savez(moved, **{name: np.moveaxis(a, 1, 0) for name, a in arrays.items()})  # type: ignore[arg-type]
    batch_first = [TensorSpec("x", "float32", ("batch", "seq", 100)), TensorSpec("y", "float32", ("batch", "train"))]
    assert len(load_npz(moved, batch_first)) == 4
    whole = tmp_path / "whole.npz"
    np.savez(whole, **{name: a[None] for name, a in arrays.items()})  # type: ignore[arg-type]
    requests = load_npz(whole, TABPFN, whole=True)
    assert requests.unbatched and len(requests) == 1
    sent = requests.request(0)
    assert all(np.array_equal(sent[name], arrays[name]) for name in arrays)


@pytest.mark.parametrize(
    "shapes",
    [
        {"x": (6, 3), "y": (5, 4)},  # no other axis agrees
        {"x": (6, 4, 2), "y": (5,)},  # one array of rank 2 or more: nothing to agree with
    ],
)
def test_no_hint_without_an_agreeing_axis(tmp_path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **{name: np.zeros(shape, np.float32) for name, shape in shapes.items()})  # type: ignore[arg-type]
    with pytest.raises(QuantserveError) as refused:
        load_npz(path)
    assert "disagree on the number of samples" in str(refused.value)
    assert "which may be the batch" not in str(refused.value)
