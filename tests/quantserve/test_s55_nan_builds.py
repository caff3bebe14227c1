"""tune and bench --model take the NaN a build accepts from its manifest (`optimizer.nan_inputs`): NaN in those
inputs alone, as a LightGBM export's "missing" (session 55), where both refused every such row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.nan_inputs import NAN_INPUTS
from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.artifact import MANIFEST_NAME
from quantserve.cli.bench_user import UserModelSpec, check_requests
from quantserve.cli.tune_checks import check_settings
from quantserve.cli.tune_trials import TuneSettings
from quantserve.errors import QuantserveError
from tests.optimizer.test_s55_nan_inputs import UNTIMED, missing_trees, rows_with_nan

UNRECORDED = "did not record NaN as accepted for input 'x' (optimize records it where the FP32 model answers NaN there"


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The tree ensemble, its data with NaN, and its FP32 build (which recorded x's NaN)."""
    model, data = missing_trees(tmp_path / "t.onnx"), rows_with_nan(tmp_path / "d.npz")
    optimize(OptimizeOptions(model, data, "fp32", "embedded", tmp_path / "fp32", speed=UNTIMED))
    return model, data, tmp_path / "fp32"


def _unrecord(build: Path) -> None:
    """The build as one made before NaN was recorded."""
    manifest = json.loads((build / MANIFEST_NAME).read_text())
    del manifest["extra"][NAN_INPUTS]
    (build / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_tune_takes_nan_where_its_build_accepted_it(tmp_path: Path, trees: tuple[Path, Path, Path]) -> None:
    _, data, build = trees
    settings = TuneSettings({"fp32": build}, data, 50.0, tmp_path / "repo", "trees", tmp_path / "out")
    check_settings(settings)
    _unrecord(build)
    with pytest.raises(QuantserveError) as refused:
        check_settings(settings)
    assert str(refused.value).startswith(f"{data}: input 'x' has 70 NaN value(s), in 66 row(s) (first: row 0)")
    assert f"; the build at {build} {UNRECORDED}" in str(refused.value)


def test_bench_user_leaves_nan_to_optimize_then_checks_requests_by_its_build(
    tmp_path: Path, trees: tuple[Path, Path, Path]
) -> None:
    model, data, build = trees
    UserModelSpec(str(model), data).check()  # before any build: optimize decides
    requests = rows_with_nan(tmp_path / "requests.npz", rows=20)
    check_requests(requests, build)
    _unrecord(build)
    with pytest.raises(QuantserveError) as refused:
        check_requests(requests, build)
    assert str(refused.value).startswith(f"{requests}: input 'x' has 5 NaN value(s)")
    assert str(refused.value).endswith(f"{UNRECORDED} finitely)")
    x = np.load(requests)["x"]
    x[1, 2] = np.inf
    np.savez(requests, x=x)
    with pytest.raises(QuantserveError, match=r"input 'x' has 1 infinite value\(s\), in 1 row\(s\) \(first: row 1\)"):
        UserModelSpec(str(model), requests).check()


def test_profile_times_the_builds_own_data_with_its_nan(trees: tuple[Path, Path, Path]) -> None:
    """Its verification data is the data optimize accepted: `profile BUILD` refused it."""
    from quantserve.artifact import Manifest
    from quantserve.cli.commands.profile import choose_inputs

    _, data, build = trees
    batches, said = choose_inputs(build, Manifest.load(build), None, 16)
    assert said.startswith(f"verification data {data}") and np.isnan(np.concatenate([b["x"] for b in batches])).any()
    _unrecord(build)
    with pytest.raises(QuantserveError) as refused:
        choose_inputs(build, Manifest.load(build), None, 16)
    assert f"; the build at {build} {UNRECORDED}" in str(refused.value)
