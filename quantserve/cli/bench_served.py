"""Served rows of `quantserve bench`: a naive FP32 deployment and the INT8 deployment `tune` leaves.

Both are deployed into one model repository and served by one tritonserver on 127.0.0.1 (explicit
model control, both loaded; while one is measured the other is idle). Each is measured by the
project's load harness: Locust, a closed loop of `users` clients, one request after another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FALLBACK = {"max_batch": 16, "max_queue_delay_us": 500, "instances": 1}  # deploy defaults, when tune is absent


@dataclass(frozen=True)
class ServedSetup:
    """What the served rows need: the repository, the two model names, how each was configured."""

    repo: Path
    naive: str
    tuned: str
    naive_config: dict[str, Any]
    tuned_config: dict[str, Any]
    tune: dict[str, Any]  # how row 5's configuration was chosen (tune's summary, or the fallback)


def deploy_naive(fp32_build: Path, repo: Path, name: str) -> dict[str, Any]:
    """FP32 with no dynamic batching and one instance: what a first deployment looks like."""
    from serving.deploy import deploy

    deploy(fp32_build, repo, name, max_batch=0, instances=1)
    return {"max_batch": 0, "preferred": [], "max_queue_delay_us": 0, "instances": 1, "precision": "fp32"}


@dataclass(frozen=True)
class TuneRequest:
    """What `tune` is asked for: the INT8 build, the requests, the SLO, the clients, where it writes."""

    int8_build: Path
    data: Path
    slo_p99_ms: float
    users: int
    request_batch: int
    out: Path
    max_trials: int


def deploy_tuned(request: TuneRequest, repo: Path, name: str, say: Callable[[str], None]) -> tuple[dict, dict]:
    """INT8 as `quantserve tune` (quick search) leaves it; (config, tune summary)."""
    try:
        from quantserve.cli.tune import TuneSettings, tune
    except ImportError:  # only while the tune command is not yet in the tree
        return deploy_fallback(request.int8_build, repo, name, request.request_batch)
    settings = TuneSettings(
        {"int8": request.int8_build}, request.data, request.slo_p99_ms, repo, name, request.out,
        max_trials=request.max_trials, quick=True, users=request.users, request_batch=request.request_batch,
        allow_slo_miss=True,  # row 5 is INT8 as tune leaves it: its best, the SLO met or not (slo_met says)
    )  # fmt: skip
    result = tune(settings, say=say)
    if not result.slo_met:  # deployed all the same (row 5 is tune's best): said, as tune alone refuses it
        say(slo_missed_line(request.slo_p99_ms, result.best.p99_ms))
    config = dict(result.deployed["config"])
    summary = {
        "source": "quantserve tune (quick)",
        "slo_p99_ms": request.slo_p99_ms,
        "trials": len(result.trials),
        "seconds": round(result.seconds, 1),
        "best": result.best.to_json(),
        "baseline": result.baseline.to_json(),
        "gain": result.gain,
        "slo_met": result.slo_met,
        "remeasured": result.remeasured,
        "tune_json": str(request.out / "tune.json"),
    }
    return config, summary


def slo_missed_line(slo_ms: float, best_p99_ms: float) -> str:
    """bench's word where no configuration tune tried met its SLO: row 5 is tune's closest, not a tuned deployment
    that holds it, and its goodput counts only the requests within it (an SLO of 1 ms, twice the in-process p99,
    against a served p50 of 2.5 ms: goodput 61 of 1378 req/s and "gain 2.89", unsaid: session 41)."""
    return (
        f"tune: no configuration met the SLO p99 ≤ {slo_ms:g} ms (its best's p99 {best_p99_ms:.1f} ms): row 5 is "
        "tune's closest, deployed anyway, and its goodput and gain count only the requests within the SLO; give "
        "--slo-p99-ms a bound the served model can meet"
    )


def deploy_fallback(int8_build: Path, repo: Path, name: str, request_batch: int = 1) -> tuple[dict, dict]:
    """A fixed dynamic-batching configuration, labelled as such; its max batch holds a whole request at least (as
    tune's configurations do: 16 against --request-batch 17 refused every request of row 5, after rows 1-4)."""
    from serving.deploy import deploy

    max_batch = max(FALLBACK["max_batch"], request_batch)
    deploy(int8_build, repo, name, max_batch, FALLBACK["max_queue_delay_us"], None, FALLBACK["instances"])
    config = {**FALLBACK, "max_batch": max_batch, "preferred": [], "precision": "int8"}
    return config, {"source": "fixed dynamic batching (quantserve tune not available)"}


def describe_config(config: dict[str, Any]) -> str:
    """E.g. "dynamic batching up to 16, queue delay 500 µs, 2 instances" or "no dynamic batching, 1 instance"."""
    instances = f"{config['instances']} instance{'s' if config['instances'] != 1 else ''}"
    if not config["max_batch"]:
        return f"no dynamic batching, {instances}"
    return f"dynamic batching up to {config['max_batch']}, queue delay {config['max_queue_delay_us']} µs, {instances}"


WARMUP_REQUESTS = 3  # the Python backend's first requests pay ONNX Runtime's lazy initialisation


class BenchServer:
    """One tritonserver on free loopback ports with the bench's models loaded; stopped by pid on exit."""

    def __init__(self, repo: Path, names: tuple[str, ...], log_path: Path) -> None:
        from serving.server import TritonServer
        from serving.server_options import ServerOptions

        options = ServerOptions.on_free_ports(repo, model_control="explicit", load_models=names, log_path=log_path)
        self.server = TritonServer(options)

    def __enter__(self) -> BenchServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def measure(self, name: str, data: Path, users: int, seconds: float, request_batch: int, out: Path) -> dict:
        """One closed-loop step of `users` Locust users; samples/s, p50/p99 ms, Triton's avg batch, failures."""
        from loadtest.harness import run_pattern
        from loadtest.load_pattern import ClosedLoop
        from loadtest.load_settings import LoadSettings

        server = self.server
        self.warm(name, data, request_batch)
        load = LoadSettings(
            server.grpc_url, name, data, ClosedLoop(users), seconds, request_batch, metrics_url=server.metrics_url
        )
        result = run_pattern(load, out, server_pid=server.pid).results[0]
        return {
            "saturation_samples_per_s": result.inferences_per_s,  # the closed loop at `users` is the served saturation
            "concurrent_samples_per_s": result.inferences_per_s,
            "p50_ms": result.latency.p50_ms,
            "p99_ms": result.latency.p99_ms,
            "avg_batch": result.avg_batch_size if math.isfinite(result.avg_batch_size) else math.nan,
            "failed_requests": float(result.failed_requests),
            "requests": float(result.requests),
        }

    def warm(self, name: str, data: Path, request_batch: int) -> None:
        """A few requests before the measured load, so its window does not time the model's first runs."""
        from quantserve.data import load_npz
        from serving.triton_runner import TritonRunner

        feeds = next(load_npz(data).batches(request_batch))
        with TritonRunner(self.server.grpc_url, name, timeout_s=120.0) as runner:
            for _ in range(WARMUP_REQUESTS):
                runner.infer(feeds)
