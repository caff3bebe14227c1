"""A BERT-style encoder end to end: optimize (--model-type bert) → deploy → real tritonserver → load → evaluate.

Mixed sequence lengths must still batch: each request carries one sequence at its own length, the
deploy marks token inputs `allow_ragged_batch` and the Python backend right-pads them into one ORT
call. The proof is Triton's own counters (`nv_inference_count / nv_inference_exec_count`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from examples import text_encoder
from optimizer.drift_budget import DriftBudget
from optimizer.transformer import TransformerSettings, run_model
from quantserve.artifact import Manifest
from quantserve.data import TensorData
from quantserve.metrics import cosine_similarity, embedding_drift

pytestmark = pytest.mark.e2e
USERS = 16
REQUESTS_PER_USER = 30


@dataclass
class ServedEncoder:
    url: str
    metrics_url: str
    pid: int
    builds: dict[str, Path]


@pytest.fixture(scope="module")
def served_encoder(
    trained_encoder, triton_server_factory: Callable[..., object], tmp_path_factory: pytest.TempPathFactory
) -> ServedEncoder:
    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("encoder-e2e")
    settings = TransformerSettings("bert", num_heads=4, hidden_size=64)
    builds = {}
    for precision in ("fp32", "int8"):
        builds[precision] = root / "build" / f"encoder_{precision}"
        options = OptimizeOptions(
            trained_encoder.onnx_path,
            trained_encoder.calib_path,
            precision,
            "embedded",
            builds[precision],
            eval_path=trained_encoder.eval_path,
            transformer=settings,
            speed=SpeedSettings(enabled=False),  # speed is a benchmark's job, not a test's
        )
        optimize(options)
        deploy(builds[precision], root / "repo", f"encoder_{precision}", max_batch=32, ragged_batching="pad")
    server = triton_server_factory(root / "repo")
    return ServedEncoder(server.grpc_url, server.metrics_url, server.pid, builds)  # type: ignore[attr-defined]


def _single_sequences(data: TensorData) -> list[dict[str, np.ndarray]]:
    """One request per sequence, cut to its own length (no padding on the wire)."""
    lengths = data.arrays["attention_mask"].sum(1)
    return [{k: v[i : i + 1, : int(lengths[i])] for k, v in data.arrays.items()} for i in range(len(data))]


def _send_concurrently(url: str, model: str, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """USERS clients, each with its own gRPC channel, sending their share of `requests` back to back."""
    from serving.client import TritonGrpcClient

    def user(index: int) -> list[tuple[int, dict[str, np.ndarray]]]:
        with TritonGrpcClient(url) as client:
            return [(i, client.infer(model, requests[i])) for i in range(index, len(requests), USERS)]

    with ThreadPoolExecutor(USERS) as pool:
        answered = dict(pair for share in pool.map(user, range(USERS)) for pair in share)
    return [answered[i] for i in range(len(requests))]


def test_int8_build_records_fusions_and_drift_within_budget(served_encoder) -> None:
    from quantserve.artifact import Manifest

    manifest = Manifest.load(served_encoder.builds["int8"])
    fuse, calibrate = (next(s for s in manifest.stages if s["stage"] == name) for name in ("fuse", "calibrate"))
    assert fuse["fused"]["Attention"] == 2 and fuse["fused"]["SkipLayerNormalization"] == 4
    assert calibrate["encoder"] == "--model-type bert" and calibrate["within_budget"]
    assert manifest.verification is not None and manifest.verification["top1_agreement"] >= 0.99


def test_mixed_lengths_batch_at_sixteen_users(served_encoder, trained_encoder) -> None:
    from loadtest.triton_metrics import breakdown, scrape

    data = text_encoder.make_token_data(USERS * REQUESTS_PER_USER, seed=21)
    requests = _single_sequences(data)
    assert len({r["input_ids"].shape[1] for r in requests}) > 20, "requests really have mixed lengths"
    model = "encoder_int8"
    before = scrape(served_encoder.metrics_url)
    served = _send_concurrently(served_encoder.url, model, requests)
    counters = breakdown(before, scrape(served_encoder.metrics_url), model)
    deadline = time.monotonic() + 5.0  # Triton counts a success just after the client has its answer
    while counters.requests_succeeded < len(requests) and time.monotonic() < deadline:
        time.sleep(0.2)
        counters = breakdown(before, scrape(served_encoder.metrics_url), model)
    assert counters.requests_succeeded == len(requests) and counters.requests_failed == 0
    print(
        f"\nmixed lengths, {USERS} users: {counters.requests_succeeded} requests, "
        f"avg batch {counters.avg_batch_size:.2f}"
    )
    assert counters.avg_batch_size > 1.5, f"Triton ran {counters.avg_batch_size:.2f} requests per execution"
    # Padding inside the server changed nothing: served outputs equal in-process ORT on each sequence
    # alone. Dynamic INT8 (the search picks it or static Q/DQ by measured speed) takes its activation
    # scales from the whole batch at run time, so a request's answer moves with its batch neighbours and
    # their padding: one run here saw a worst cosine of 0.961 to the same sequence alone. It must hold
    # the budget's mean cosine over the sampled requests, not equal bits (a 7-bit dynamic build, trained on one
    # thread, answered with logits 0.3 apart and was held to equal bits).
    build = served_encoder.builds["int8"]
    scheme = next(s for s in Manifest.load(build).stages if s["stage"] == "calibrate").get("scheme")
    cosines: dict[str, list[float]] = {name: [] for name in text_encoder.OUTPUT_NAMES}
    for index in range(0, len(requests), 37):
        alone = run_model(build / "model.onnx", requests[index])
        for name in text_encoder.OUTPUT_NAMES:
            if scheme.startswith("dynamic"):  # `dynamic` or `dynamic_7bit` (x86 without VNNI)
                cosines[name].append(float(cosine_similarity(served[index][name], alone[name]).min()))
            else:
                np.testing.assert_allclose(served[index][name], alone[name], rtol=1e-3, atol=1e-3)
    for name, values in cosines.items():
        if values:
            print(f"{name}: served vs alone cosine mean {np.mean(values):.4f}, worst {min(values):.4f}")
            assert np.mean(values) >= DriftBudget().min_cosine_mean, (name, values)


def test_served_int8_drift_against_served_fp32(served_encoder, trained_encoder) -> None:
    from serving.triton_runner import TritonRunner

    held_out = trained_encoder.held_out
    outputs = {}
    for precision in ("fp32", "int8"):
        with TritonRunner(served_encoder.url, f"encoder_{precision}") as runner:
            outputs[precision] = runner.infer(held_out.arrays)
    fp32, int8 = outputs["fp32"], outputs["int8"]
    agreement = float(np.mean(fp32["logits"].argmax(1) == int8["logits"].argmax(1)))
    drift = embedding_drift(fp32["embedding"], int8["embedding"], k=5)
    print(f"\nserved INT8 vs FP32: top-1 agreement {agreement:.4f}, embeddings {drift.to_dict()}")
    assert agreement >= 0.99
    assert drift.mean_cosine >= 0.99 and drift.worst_cosine > 0.9
    assert drift.topk_overlap >= 0.8
    assert text_encoder.accuracy(int8["logits"], held_out.labels) > 95.0


def test_locust_load_at_sixteen_users_batches(served_encoder, trained_encoder, tmp_path: Path) -> None:
    from loadtest.harness import run_load

    result = run_load(
        served_encoder.url,
        "encoder_int8",
        trained_encoder.eval_path,
        users=USERS,
        duration_s=4,
        out_dir=tmp_path,
        metrics_url=served_encoder.metrics_url,
        server_pid=served_encoder.pid,
    )
    print(f"\nLocust, {USERS} users: {result.requests} requests, avg batch {result.avg_batch_size:.2f}")
    assert result.failed_requests == 0 and result.requests > 50
    assert result.avg_batch_size > 1.5
