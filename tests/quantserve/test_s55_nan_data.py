"""NaN as a value ("missing") in an input, accepted by `check_against` in the inputs a build recorded, and nowhere
else; an infinity never (session 55). atspm-detector's LightGBM export takes NaN as missing, and every command
refused its real rows ("inputs must be finite")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, check_against, load_npz
from quantserve.errors import QuantserveError
from quantserve.finite_data import NAN_ROUTE, NanAccepted

SPEC = [TensorSpec("x", "float32", ("N", 4)), TensorSpec("k", "float32", ("N", 2))]


def _data(x_bad: float = np.nan, k_bad: float | None = None) -> TensorData:
    x = np.zeros((10, 4), np.float32)
    k = np.ones((10, 2), np.float32)
    x[[3, 7], 1] = x_bad
    if k_bad is not None:
        k[5, 0] = k_bad
    return TensorData({"x": x, "k": k})


def test_nan_is_accepted_in_the_inputs_named_alone() -> None:
    check_against("d.npz", _data(), SPEC, NanAccepted(frozenset({"x"}), "the served model's build"))
    with pytest.raises(QuantserveError) as refused:
        check_against("d.npz", _data(k_bad=np.nan), SPEC, NanAccepted(frozenset({"x"}), "the served model's build"))
    assert str(refused.value) == (
        "d.npz: input 'k' has 1 NaN value(s), in 1 row(s) (first: row 5); inputs must be finite; the served model's "
        "build did not record NaN as accepted for input 'k' (optimize records it where the FP32 model answers NaN "
        "there finitely)"
    )


def test_an_infinity_is_refused_where_nan_is_accepted() -> None:
    with pytest.raises(QuantserveError) as refused:
        check_against("d.npz", _data(np.inf), SPEC, NanAccepted(frozenset({"x", "k"})))
    assert str(refused.value) == (
        "d.npz: input 'x' has 2 infinite value(s), in 2 row(s) (first: row 3); inputs must be finite (NaN only "
        "where the model takes it as a missing value; an infinity never)"
    )
    data = _data()
    data.arrays["x"][9, 0] = -np.inf  # NaN beside it is accepted: only the infinity is counted
    with pytest.raises(QuantserveError, match=r"input 'x' has 1 infinite value\(s\), in 1 row\(s\) \(first: row 9\)"):
        check_against("d.npz", data, SPEC, NanAccepted(frozenset({"x"})))


def test_nan_without_a_record_says_how_it_is_accepted(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", **_data().arrays)
    with pytest.raises(QuantserveError) as refused:
        load_npz(tmp_path / "d.npz", SPEC)
    assert str(refused.value) == (
        f"{tmp_path / 'd.npz'}: input 'x' has 2 NaN value(s), in 2 row(s) (first: row 3); inputs must be finite"
        f"{NAN_ROUTE}"
    )
    assert "optimize checks that and records it" in NAN_ROUTE
    loaded = load_npz(tmp_path / "d.npz", SPEC, nan_ok=NanAccepted(frozenset({"x"})))
    assert int(np.isnan(loaded.arrays["x"]).sum()) == 2
