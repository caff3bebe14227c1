"""`quantserve tune` on models its search could not handle: a per-sample 1-D input (the scratch model's batched
trials were refused by deploy's interface check after the unbatched baseline), and a model that refuses every
request (the search ran every trial and a confirmation, then blamed the SLO with Triton's error printed nowhere)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from quantserve.cli import main
from quantserve.cli.tune import TuneSettings, make_config, search
from quantserve.cli.tune_failed import failure_line
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import SCRATCH_MODEL, ServingConfig, Trial, commonest_error
from quantserve.errors import QuantserveError

MODELS_FILE = Path(__file__).resolve().parents[1] / "loadtest" / "loadtest_models.py"
VOCAB, LENGTH, WIDTH = 100, 8, 16
ORT_ERROR = (
    "[StatusCode.INTERNAL] inference failed: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code "
    "returned while running Gather node. Name:'' Status Message: indices element out of data bounds, idx={} must "
    "be within the inclusive range [-100,99]"
)


def loadtest_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tune_refusals_models", MODELS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def token_build(root: Path) -> Path:
    """A token model (ids [batch, 8] → mean of a 100-row embedding): ids of another tokenizer (>= 100) have the
    dtype and shape every check reads, and ORT's Gather refuses each request at run time."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from quantserve.artifact import Manifest, TensorSpec

    embedding = np.random.default_rng(0).normal(size=(VOCAB, WIDTH)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),
            helper.make_node("ReduceMean", ["e", "axes"], ["logits"], keepdims=0),
        ],
        "tokens",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", LENGTH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", WIDTH])],
        initializer=[
            numpy_helper.from_array(embedding, "emb"),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    build = root / "tokens_fp32"
    build.mkdir(parents=True)
    onnx.save(model, build / "model.onnx")
    inputs, outputs = (
        [TensorSpec("ids", "int64", ("batch", LENGTH))],
        [TensorSpec("logits", "float32", ("batch", WIDTH))],
    )
    Manifest(build.name, inputs, outputs, precision="fp32", target="embedded", files={"model": "model.onnx"}).save(
        build
    )
    return build


class NoServer:
    """Stands in for the trial server's tritonserver: `install` loads the model; only the deploy is under test."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def control(self, timeout_s: float) -> NoServer:
        return self

    def load(self, name: str) -> None:
        self.loaded.append(name)


# --- defect 3: one scratch model, unbatched baseline and batched trials -----------------------------------------


def test_a_batched_trial_follows_the_unbatched_baseline_of_a_model_with_a_1d_input(tmp_path: Path) -> None:
    """Before: `.tune-repo/tune_candidate: this version changes the model's interface: input 'gain' dims [-1] →
    [-1, 1] … pass --allow-interface-change` at the first batched trial. The user's repository keeps the check."""
    from serving.deploy import deploy
    from serving.model_config import parse_config

    models = loadtest_models()
    build = models.make_gain_build(tmp_path / "gain_fp32", models.mlp_weights())
    settings = TuneSettings({"": build}, tmp_path / "load.npz", 50.0, tmp_path / "repo", "m", tmp_path / "out")
    bench = TrialServer(settings, tmp_path / "out")
    bench.server = NoServer()  # type: ignore[assignment]
    bench.install(settings.baseline())
    batched = make_config("", 8, "powers", 500, 1)
    bench.install(batched)
    config = parse_config(bench.repo / SCRATCH_MODEL / "config.pbtxt")
    assert config["max_batch_size"] == 8 and bench.server.loaded == [SCRATCH_MODEL, SCRATCH_MODEL]  # type: ignore[attr-defined]
    bench.install(settings.baseline())  # and back: each trial is whatever the search suggests next
    assert parse_config(bench.repo / SCRATCH_MODEL / "config.pbtxt").get("max_batch_size", 0) == 0
    # a served model's clients are still guarded: the same change under the user's name is refused
    deploy(build, tmp_path / "repo", "m", max_batch=0)
    with pytest.raises(QuantserveError, match="changes the model's interface: input 'gain' dims"):
        deploy(build, tmp_path / "repo", "m", max_batch=8)


# --- defect 4: every request refused ------------------------------------------------------------------------------


def test_the_commonest_error_counts_messages_that_differ_only_in_their_numbers_as_one() -> None:
    """ORT names each out-of-range index: one cause came as 33 messages of ~10 each, the top one '12x' of 275."""
    errors = {f'TritonRequestFailed("{ORT_ERROR.format(i)}")': 10 + i % 3 for i in range(1000, 1033)}
    errors['TritonRequestFailed("[StatusCode.UNAVAILABLE] failed to connect to all addresses")'] = 40
    message, count = commonest_error(errors)
    assert message in {ORT_ERROR.format(i) for i in range(1000, 1033)}  # one of the group's own messages
    assert count == sum(10 + i % 3 for i in range(1000, 1033))
    assert commonest_error({}) == ("", 0)


def refused(config: ServingConfig, requests: int = 300) -> Trial:
    return Trial(
        config, 0.0, float("nan"), float("nan"), requests, 0.0, requests=requests, window_s=3.0,
        commonest_failure=ORT_ERROR.format(11910), commonest_failure_count=requests,
    )  # fmt: skip


class RefusingBench:
    """Every trial's requests all fail, as a model refusing the data makes them."""

    def __init__(self) -> None:
        self.runs: list[ServingConfig] = []

    def run(self, config: ServingConfig, rivals: Any = ()) -> Trial:
        self.runs.append(config)
        return refused(config)


def test_the_search_stops_after_a_baseline_whose_every_request_failed(tmp_path: Path) -> None:
    """Before: all 3 trials of `--max-trials 2` were measured (then a confirmation), every request failing."""
    settings = TuneSettings({"": tmp_path}, tmp_path / "d.npz", 50.0, tmp_path / "r", "m", tmp_path / "o", 2, True)
    bench = RefusingBench()
    said: list[str] = []
    trials, _ = search(settings, bench, said.append, None)  # type: ignore[arg-type]
    assert bench.runs == [settings.baseline()] and len(trials) == 1
    assert said[-1] == "stopping the search: every request failed and no trial served one"
    line = failure_line(trials)
    assert line.startswith("every request of the baseline (no batching x1) failed (300 of 300); the commonest error")
    assert ORT_ERROR.format(11910) in line and "SLO" not in line and "nothing was deployed" in line
    # a trial that served one request is no refusal: the search goes on, and there is no failure to report
    served = [
        refused(settings.baseline()),
        Trial(make_config("", 4, "powers", 0, 1), 9.0, 1.0, 2.0, 0, 9.0, requests=9),
    ]
    assert failure_line(served) == ""


@pytest.mark.e2e
@pytest.mark.slow  # not serial: every request fails, whatever the machine; nothing measured is judged
def test_a_model_that_refuses_every_request_stops_tune_with_tritons_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before (a fixed-length token model fed other lengths): every trial and the confirmation failed every request,
    80 s, then "no configuration met the SLO … a faster build, more cores or a looser SLO would be needed", p99 nan,
    exit 1, and Triton's error nowhere. Now: the baseline alone, Triton's error in one line, nothing deployed."""
    from quantserve.cli import tune_trials

    monkeypatch.setattr(tune_trials, "QUICK_WARMUP_S", 0.0)
    monkeypatch.setattr(tune_trials, "QUICK_WINDOW_S", 1.0)
    build = token_build(tmp_path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "ids.npz", ids=rng.integers(VOCAB, 30000, size=(32, LENGTH)))  # another tokenizer's ids
    out, repo = tmp_path / "out", tmp_path / "repo"
    argv = ["tune", str(build), "--data", str(tmp_path / "ids.npz"), "--slo-p99-ms", "500", "--quick"]
    argv += ["--max-trials", "2", "--users", "4", "--repo", str(repo), "--name", "tokens", "--out", str(out)]
    assert main(argv) == QuantserveError.exit_code
    captured = capsys.readouterr()
    line = captured.err.strip().splitlines()[-1]
    print(f"\n{line}")
    assert line.startswith("quantserve: error: tune: every request of the baseline (no batching x1) failed (")
    assert "indices element out of data bounds" in line and "nothing was deployed" in line
    assert "SLO" not in captured.err + captured.out and "faster build" not in captured.err + captured.out
    assert "confirm" not in captured.err and not repo.exists()
    document = json.loads((out / "tune.json").read_text())
    assert (
        len(document["trials"]) == 1 and document["trials"][0]["failed_requests"] == document["trials"][0]["requests"]
    )
    assert document["failure"] == line.removeprefix("quantserve: error: tune: ")
    assert document["deployed"] == {} and document["remeasured"] == {} and not document["search"]["confirmed"]
    assert "Failed: every request of the baseline" in (out / "tune.html").read_text()
