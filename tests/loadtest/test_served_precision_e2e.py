"""A real tritonserver serving an INT8 build as `alpha` and an FP32 one as `beta`: loadtest and evaluate read each
model's precision from its served config, and the report compares them the right way round (by the names it said
"served INT8 vs FP32 not measured")."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.accuracy_results import AccuracyReport
from loadtest.load_run import LoadRun
from loadtest.report import load_results
from loadtest.verdict import load_failures
from quantserve.cli import main

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def neutral_results(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., object]) -> Path:
    """Both builds deployed under names that say nothing, load-tested briefly and evaluated into one folder."""
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("neutral")
    weights = models.mlp_weights()
    data = models.labeled_data(64, weights, seed=3).save(root / "load.npz")
    calib = models.labeled_data(128, weights, seed=5).save(root / "calib.npz")
    fp32 = models.make_build_dir(root / "build" / "mlp_fp32", weights=weights)
    int8 = models.make_int8_build(fp32, calib, root / "build")
    for name, build in (("alpha", int8), ("beta", fp32)):
        deploy(build, root / "repo", name, max_batch=16, instances=1)
    server = triton_server_factory(root / "repo")
    out = root / "out"
    common = ["--url", server.grpc_url, "--data", str(data), "--out", str(out)]  # type: ignore[attr-defined]
    code = main(["loadtest", *common, "--model", "beta,alpha", "--users", "2", "--duration", "3s"])
    results = load_results(out)  # a FAIL report (this toy INT8 may serve slower) exits 1, as `report` does (s57)
    assert code == (1 if results.verdict.failures else 0) and not load_failures(results.runs), results.verdict.failures
    assert main(["evaluate", *common, "--models", "beta,alpha", "--reference", "beta"]) == 0
    from loadtest.harness import run_pattern
    from loadtest.load_pattern import ClosedLoop
    from loadtest.load_settings import LoadSettings

    api = LoadSettings(server.grpc_url, "alpha", data, ClosedLoop(1), duration_s=2.0)  # type: ignore[attr-defined]
    run_pattern(api, root / "api")  # the library's own entry records it too
    return out


def test_loadtest_and_evaluate_record_the_deployed_precision(neutral_results: Path) -> None:
    assert LoadRun.load(neutral_results / "load-alpha.json").precision == "int8"
    assert LoadRun.load(neutral_results / "load-beta.json").precision == "fp32"
    assert LoadRun.load(neutral_results.parent / "api" / "load-alpha.json").precision == "int8"
    accuracy = AccuracyReport.load(neutral_results / "accuracy.json")
    assert {v.model: v.precision for v in accuracy.variants} == {"beta": "fp32", "alpha": "int8"}


def test_the_headline_compares_the_int8_build_with_the_fp32_one(neutral_results: Path) -> None:
    md = (neutral_results / "report.md").read_text()
    headline = re.search(r"\*\*(.+)\*\*", md).group(1)  # type: ignore[union-attr]
    assert re.search(r" · INT8 \d+\.\d\d× FP32 served \(alpha vs beta, [\d.]+ vs [\d.]+ req/s at 2 users\)", headline)
    assert "taken from the model names" not in md and "unknown" not in md
