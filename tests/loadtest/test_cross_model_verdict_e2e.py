"""A real tritonserver serving an INT8 and an FP32 build of one model and an unrelated FP32 model: each load run
records its start, the served versions, the source model the deployment recorded and a hash of its data, and the
report pairs INT8 with FP32 only for variants of one model sent the same data.

A digits CNN (`d_int8`) and an unrelated linear model (`lin`) load-tested into one folder were reported as
"FAIL · INT8 0.61× FP32 served (d_int8 vs lin, …)", exit 1: nothing recorded said they were different models.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.load_run import LoadRun
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.verdict import load_failures
from quantserve.artifact import Manifest
from quantserve.cli import main

pytestmark = pytest.mark.e2e


def _with_reference(build: Path, reference: Path) -> Path:
    """The build as `optimize` leaves it: its FP32 reference (fp32.onnx, the source model) beside the model."""
    shutil.copyfile(reference, build / "fp32.onnx")
    manifest = Manifest.load(build)
    manifest.files["reference"] = "fp32.onnx"
    manifest.save(build)
    return build


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., object]) -> Path:
    """`alpha` (INT8) and `beta` (FP32) of one model and `other` (FP32 of another model), deployed by quantserve and
    load-tested by the CLI into one folder."""
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("cross")
    weights = models.mlp_weights()
    data = models.labeled_data(64, weights, seed=3).save(root / "load.npz")
    calib = models.labeled_data(128, weights, seed=5).save(root / "calib.npz")
    fp32 = models.make_build_dir(root / "build" / "mlp_fp32", weights=weights)
    int8 = models.make_int8_build(fp32, calib, root / "build")
    other = models.make_build_dir(root / "build" / "other", weights=models.mlp_weights(seed=7))
    _with_reference(int8, fp32 / "model.onnx")
    _with_reference(fp32, fp32 / "model.onnx")
    _with_reference(other, other / "model.onnx")
    for name, build in (("alpha", int8), ("beta", fp32), ("other", other)):
        deploy(build, root / "repo", name, max_batch=16, instances=1)
    server = triton_server_factory(root / "repo")
    out = root / "out"
    common = ["--url", server.grpc_url, "--data", str(data), "--out", str(out)]  # type: ignore[attr-defined]
    code = main(["loadtest", *common, "--model", "alpha,beta,other", "--users", "2", "--duration", "2s"])
    results = load_results(out)  # a FAIL report (this toy INT8 may serve slower) exits 1, as `report` does (s57)
    assert code == (1 if results.verdict.failures else 0) and not load_failures(results.runs), results.verdict.failures
    evaluated = ["--url", server.grpc_url, "--data", str(data), "--out", str(root / "acc")]  # type: ignore[attr-defined]
    main(["evaluate", *evaluated, "--models", "beta,alpha,other", "--reference", "beta"])  # `other` fails its budget
    (out / "server.json").write_text(json.dumps({"url": server.grpc_url, "data": str(data)}))  # type: ignore[attr-defined]
    return out


def _folder(three_runs: Path, tmp_path: Path, models_in: tuple[str, ...]) -> Path:
    folder = tmp_path / "-".join(models_in)
    folder.mkdir()
    for model in models_in:
        shutil.copyfile(three_runs / f"load-{model}.json", folder / f"load-{model}.json")
    return folder


def test_each_run_records_its_start_versions_source_and_data(three_runs: Path) -> None:
    runs = {m: LoadRun.load(three_runs / f"load-{m}.json") for m in ("alpha", "beta", "other")}
    identities = {m: run.identity for m, run in runs.items()}
    assert all(i is not None for i in identities.values())
    alpha, beta, other = identities["alpha"], identities["beta"], identities["other"]
    assert alpha and beta and other
    assert alpha.source and alpha.source.startswith("sha256:") and alpha.source == beta.source != other.source
    assert alpha.versions == beta.versions == other.versions == ["1"]
    assert alpha.data_sha256 and alpha.data_sha256 == beta.data_sha256 == other.data_sha256
    started = alpha.started()
    assert started is not None and abs((datetime.now(UTC) - started).total_seconds()) < 600
    assert alpha.started_at.endswith("Z")


def test_an_int8_build_and_an_unrelated_model_get_no_speed_verdict(
    three_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(three_runs, tmp_path, ("alpha", "other"))
    assert main(["report", str(folder)]) == 0  # no verdict, not a FAIL
    headline = capsys.readouterr().out.splitlines()[-1]
    assert headline.startswith("No verdict: alpha and other are different models (source sha256:"), headline
    assert headline.endswith("): no INT8-vs-FP32 verdict"), headline
    assert "0." not in headline.split("(")[0] and "FAIL" not in headline


def test_variants_of_one_model_on_one_data_set_are_compared(three_runs: Path, tmp_path: Path) -> None:
    verdict = load_results(_folder(three_runs, tmp_path, ("alpha", "beta", "other"))).verdict
    assert verdict.served is not None and (verdict.served.int8_model, verdict.served.fp32_model) == ("alpha", "beta")
    assert not [n for n in verdict.notes if "different" in n or "names only" in n or " apart " in n], verdict.notes


def test_runs_on_different_data_or_hours_apart_are_said(three_runs: Path, tmp_path: Path) -> None:
    folder = _folder(three_runs, tmp_path, ("alpha", "beta"))
    path = folder / "load-beta.json"
    record = json.loads(path.read_text())
    record["identity"]["data_sha256"] = "sha256:" + "0" * 64
    record["identity"]["started_at"] = "2026-01-02T03:04:05Z"
    path.write_text(json.dumps(record))
    render(folder)
    verdict = load_results(folder).verdict
    assert verdict.served is None
    assert verdict_headline(verdict).startswith("No verdict: alpha and beta were load-tested on different data (")
    assert any(
        n.startswith("the load runs in this folder started ") and " h apart (beta at 2026-01-02T03:04:05Z, " in n
        for n in verdict.notes
    ), verdict.notes


def test_loadtest_says_when_the_folder_holds_another_models_run(
    three_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(three_runs, tmp_path, ("alpha",))
    served = json.loads((three_runs / "server.json").read_text())
    common = ["--url", served["url"], "--data", served["data"], "--out", str(folder)]
    capsys.readouterr()
    assert main(["-q", "loadtest", *common, "--model", "other", "--users", "1", "--duration", "1s"]) == 0
    out = capsys.readouterr().out
    assert f"note: {folder} also holds load results of alpha (started 20" in out, out
    assert "verdict: No verdict: alpha and other are different models (source sha256:" in out, out


def test_evaluate_records_each_variants_source_and_notes_another_model(three_runs: Path) -> None:
    from loadtest.accuracy_results import AccuracyReport

    acc = three_runs.parent / "acc"
    sources = {v.model: v.source for v in AccuracyReport.load(acc / "accuracy.json").variants}
    assert sources["alpha"] == sources["beta"] != sources["other"] and str(sources["other"]).startswith("sha256:")
    notes = load_results(acc).verdict.notes
    assert [n for n in notes if n.startswith("other and the reference beta are different models (source ")], notes
    assert not [n for n in notes if n.startswith("alpha and the reference")], notes
