"""One live version addressed by infer, evaluate and loadtest (`--model-version N`, `m@N`) on a real tritonserver
serving two versions of one model, as `deploy --live-versions 2` leaves it: FP32 weights as version 1 and other
weights recorded as int8 as version 2, so each version's answers and precision are its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from quantserve.cli import main
from quantserve.data import load_npz
from serving.triton_runner import TritonRunner

pytestmark = pytest.mark.e2e
REFUSAL = (
    "model 'mlp' has no version 3 served (versions served: 1, 2); name one of those, or serve that version first "
    "(deploy --live-versions, rollback --to)"
)


@dataclass
class TwoVersions:
    url: str
    metrics_url: str
    data: Path
    weights: dict[int, dict[str, np.ndarray]]


def two_version_repo(root: Path) -> tuple[Path, dict[int, dict[str, np.ndarray]]]:
    """`root/repo` with model 'mlp' as `deploy --live-versions 2` leaves it: version 1 FP32, version 2 other weights
    recorded as int8 (the newest, the config's); the data file (labelled by version 1) and each version's weights."""
    from serving.deploy import deploy
    from serving.deploy_config import ServingPolicy

    weights = {1: models.mlp_weights(), 2: models.perturbed(models.mlp_weights(), scale=1.0)}
    data = models.labeled_data(64, weights[1], seed=3).save(root / "data.npz")
    for version, precision in ((1, "fp32"), (2, "int8")):
        build = models.make_build_dir(root / f"v{version}", weights=weights[version], precision=precision)
        deploy(build, root / "repo", "mlp", max_batch=8, instances=1, policy=ServingPolicy(live_versions=2))
    return data, weights


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., object]) -> TwoVersions:
    root = tmp_path_factory.mktemp("versions")
    data, weights = two_version_repo(root)
    server = triton_server_factory(root / "repo")
    return TwoVersions(server.grpc_url, server.metrics_url, data, weights)  # type: ignore[attr-defined]


def test_each_addressed_version_answers_its_own(two_versions: TwoVersions, capsys: pytest.CaptureFixture[str]) -> None:
    x = load_npz(two_versions.data).arrays["x"][:8]
    for version, precision in (("1", "fp32"), ("2", "int8")):
        with TritonRunner(two_versions.url, "mlp", version) as runner:
            answered = runner.infer({"x": x})["logits"]
            assert runner.precision == precision
        assert np.allclose(answered, models.reference_logits(x, two_versions.weights[int(version)]), atol=1e-4)
    argv = ["infer", "--url", two_versions.url, "--model", "mlp", "--data", str(two_versions.data), "--json"]
    assert main([*argv, "--model-version", "1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["model_version"], record["precision"]) == ("1", "fp32")


def test_an_unserved_version_is_refused_in_one_line(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, data = two_versions.url, str(two_versions.data)
    commands = (
        ["infer", "--url", url, "--model", "mlp", "--data", data, "--model-version", "3"],
        ["loadtest", "--url", url, "--model", "mlp@3", "--data", data, "--out", str(tmp_path / "load")],
        ["evaluate", "--url", url, "--models", "mlp@3", "--reference", "mlp@1", "--data", data, "--out", str(tmp_path)],
    )
    for argv in commands:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"quantserve: error: {url}: {REFUSAL}", argv[0]
    assert not list((tmp_path / "load").glob("load-*.json"))


def test_evaluate_judges_two_live_versions_of_one_model(two_versions: TwoVersions, tmp_path: Path) -> None:
    argv = ["evaluate", "--url", two_versions.url, "--models", "mlp@2", "--reference", "mlp@1", "--no-budget"]
    assert main([*argv, "--data", str(two_versions.data), "--out", str(tmp_path), "--json"]) == 0
    variants = {v["model"]: v for v in json.loads((tmp_path / "accuracy.json").read_text())["variants"]}
    assert [(v["version"], v["precision"]) for v in variants.values()] == [("1", "fp32"), ("2", "int8")]
    assert variants["mlp@1"]["top1_agreement"] == 1.0 and variants["mlp@1"]["accuracy"] > 0.9
    assert variants["mlp@2"]["top1_agreement"] < 0.9 and variants["mlp@2"]["max_abs_diff"] > 0.1  # its own answers


def test_loadtest_sends_every_request_to_the_version_named(two_versions: TwoVersions, tmp_path: Path) -> None:
    before = version_successes(two_versions.metrics_url)
    argv = ["loadtest", "--url", two_versions.url, "--model", "mlp", "--model-version", "1", "--users", "2"]
    assert main([*argv, "--duration", "2s", "--data", str(two_versions.data), "--out", str(tmp_path), "--json"]) == 0
    after = version_successes(two_versions.metrics_url)
    run = json.loads((tmp_path / "load-mlp_1.json").read_text())
    assert (run["model"], run["precision"]) == ("mlp@1", "fp32")
    assert after["1"] - before["1"] >= run["results"][0]["requests"] > 0
    assert after["2"] == before["2"]  # the newest version, which answers a request naming none, got none


def version_successes(metrics_url: str) -> dict[str, float]:
    """Triton's successful-request count of model 'mlp' per version."""
    from loadtest.triton_metrics import VERSIONS, scrape

    counters = scrape(metrics_url)["mlp"][VERSIONS]
    return {v: c["nv_inference_request_success"] for v, c in counters.items()}
