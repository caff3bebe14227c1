"""deploy records the inputs whose NaN a build accepts (`optimizer.nan_inputs`) in the served config, as it records
the kinds a build was told; the commands sending data read it back and accept NaN in those inputs alone (session 55:
a LightGBM export takes NaN as "missing", and infer, evaluate and loadtest refused its real rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, check_against
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_config import parse_config
from serving.nan_parameter import (
    NAN_PARAMETER,
    ServedNanAccepted,
    nan_parameter,
    recorded_nan_inputs,
    served_nan_accepted,
)
from tests.optimizer.test_s55_nan_inputs import UNTIMED, missing_trees, projection, rows_with_nan

INPUTS = [TensorSpec("x", "float32", ("N", 4))]


def _config(names: object) -> dict[str, Any]:
    """A served config (Triton's JSON) whose deploy recorded `names` as accepting NaN."""
    return {"parameters": {k: {"string_value": v} for k, v in nan_parameter(names).items()}}


def _with_nan() -> TensorData:
    x = np.zeros((6, 4), np.float32)
    x[2, 1] = np.nan
    return TensorData({"x": x})


def test_deploy_writes_the_builds_nan_inputs_into_the_served_config(tmp_path: Path) -> None:
    data = rows_with_nan(tmp_path / "d.npz")
    optimize(
        OptimizeOptions(missing_trees(tmp_path / "t.onnx"), data, "fp32", "embedded", tmp_path / "trees", speed=UNTIMED)
    )
    config = parse_config(deploy(tmp_path / "trees", tmp_path / "repo", "trees").config_path)
    assert config["parameters"][NAN_PARAMETER] == {"string_value": '["x"]'}
    assert recorded_nan_inputs(config) == frozenset({"x"})
    check_against("d.npz", _with_nan(), INPUTS, served_nan_accepted(config))
    np.savez(tmp_path / "finite.npz", x=np.ones((300, 4), np.float32))
    finite = OptimizeOptions(
        projection(tmp_path / "p.onnx"), tmp_path / "finite.npz", "fp32", "embedded", tmp_path / "p", speed=UNTIMED
    )
    optimize(finite)
    assert NAN_PARAMETER not in parse_config(deploy(tmp_path / "p", tmp_path / "repo", "p").config_path).get(
        "parameters", {}
    )


def test_the_recorded_names_read_back_none_where_absent_or_garbled() -> None:
    assert recorded_nan_inputs(_config({"x": {"rows": 3}})) == frozenset({"x"})  # the manifest's record: its names
    assert recorded_nan_inputs({}) == frozenset()  # an older deploy
    assert recorded_nan_inputs({"parameters": {NAN_PARAMETER: {"string_value": "["}}}) == frozenset()
    assert recorded_nan_inputs({"parameters": {NAN_PARAMETER: {"string_value": '{"x": 1}'}}}) == frozenset()
    assert nan_parameter(None) == nan_parameter([3]) == {}


def test_a_served_model_without_the_record_refuses_nan_naming_it() -> None:
    with pytest.raises(QuantserveError) as refused:
        check_against("d.npz", _with_nan(), INPUTS, served_nan_accepted({}))
    assert str(refused.value) == (
        "d.npz: input 'x' has 1 NaN value(s), in 1 row(s) (first: row 2); inputs must be finite; the served model's "
        "build did not record NaN as accepted for input 'x' (optimize records it where the FP32 model answers NaN "
        "there finitely)"
    )


def test_the_served_config_is_read_only_for_data_that_is_not_finite() -> None:
    reads: list[int] = []

    def read() -> dict[str, Any]:
        reads.append(1)
        return _config(["x"])

    accepted = ServedNanAccepted(read)
    check_against("d.npz", TensorData({"x": np.zeros((6, 4), np.float32)}), INPUTS, accepted)
    assert reads == []
    check_against("d.npz", _with_nan(), INPUTS, accepted)
    check_against("d.npz", _with_nan(), INPUTS, accepted)
    assert reads == [1]  # read once, at the first NaN
    with pytest.raises(QuantserveError, match=r"input 'x' has 1 NaN value.*did not record NaN as accepted"):
        check_against("d.npz", _with_nan(), INPUTS, ServedNanAccepted(lambda: None))  # a config not read: none
