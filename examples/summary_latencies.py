r"""What Triton's latency summaries cost at a high request rate: `serve` (summaries on, its default) against
`serve --no-summary-latencies`, side by side in one run.

Writes OUT/repo (a 64 → 256 → 10 MLP deployed as `mlp`, max batch 8: about 1 000–2 500 requests a second on 2 cores,
where a per-request cost would show first) and OUT/data.npz, then alternates the two servers over `--rounds` rounds
(on, off, on, off, …), each a fresh `quantserve serve` on 127.0.0.1 and one `quantserve loadtest` of `--users`
users for `--duration`, and prints each pair's throughput and p99 and their ratios (on / off), then the medians:

    python -m examples.summary_latencies --out reports/summaries --rounds 4 --duration 20s

Shared machines are noisy: compare the median ratio with the spread of the pairs, never one pair.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from serving.deploy import deploy

GRPC, HTTP, METRICS = 19611, 19612, 19613


def mlp_model(seed: int = 0) -> onnx.ModelProto:
    """x (batch, 64) float → logits (batch, 10): Gemm, Relu, Gemm."""
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.normal(0, 0.1, (64, 256)).astype(np.float32),
        "b1": np.zeros(256, np.float32),
        "w2": rng.normal(0, 0.1, (256, 10)).astype(np.float32),
        "b2": np.zeros(10, np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def write(out: Path, seed: int = 0) -> None:
    """The build, its deployment as `mlp` and the load data under `out`."""
    build = out / "build"
    build.mkdir(parents=True, exist_ok=True)
    onnx.save(mlp_model(seed), str(build / "model.onnx"))
    inputs = [TensorSpec("x", "float32", ("batch", 64))]
    outputs = [TensorSpec("logits", "float32", ("batch", 10))]
    Manifest("mlp", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(build)
    deploy(build, out / "repo", "mlp", max_batch=8)
    x = np.random.default_rng(seed).normal(size=(512, 64)).astype(np.float32)
    TensorData({"x": x}).save(out / "data.npz")


def measure(out: Path, label: str, summaries: bool, users: int, duration: str) -> dict[str, float]:
    """One fresh server (summaries on or off) and one load test of it: its throughput and p99."""
    quantserve = [str(Path(sys.executable).with_name("quantserve"))]  # the venv's own command
    ports = ["--grpc-port", str(GRPC), "--http-port", str(HTTP), "--metrics-port", str(METRICS)]
    flag = [] if summaries else ["--no-summary-latencies"]
    with open(out / f"serve-{label}.log", "w") as log:
        server = subprocess.Popen(
            [*quantserve, "serve", "--repo", str(out / "repo"), *ports, *flag], stdout=log, stderr=log
        )
    try:
        _wait_ready(server)
        run = out / "runs" / label
        shutil.rmtree(run, ignore_errors=True)
        load = ["loadtest", "--url", f"127.0.0.1:{GRPC}", "--model", "mlp", "--data", str(out / "data.npz")]
        load += ["--users", str(users), "--duration", duration, "--out", str(run)]
        subprocess.run([*quantserve, *load], check=True, stdout=subprocess.DEVNULL)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    result = json.loads((run / "load-mlp.json").read_text())["results"][0]
    return {"rps": float(result["throughput_rps"]), "p99": float(result["latency"]["p99_ms"])}


def _wait_ready(server: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"quantserve serve exited {server.returncode} before it was ready (see its log)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{HTTP}/v2/health/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"quantserve serve not ready after {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the build, repository, data and runs")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
    write(args.out)
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {args.users} users, {args.duration} a run")
    rps, p99 = [], []
    for number in range(1, args.rounds + 1):
        on = measure(args.out, f"on{number}", True, args.users, args.duration)
        off = measure(args.out, f"off{number}", False, args.users, args.duration)
        rps.append(on["rps"] / off["rps"])
        p99.append(on["p99"] / off["p99"])
        print(
            f"round {number}: summaries on {on['rps']:.1f} req/s, p99 {on['p99']:.2f} ms; off {off['rps']:.1f} req/s, "
            f"p99 {off['p99']:.2f} ms; on/off throughput {rps[-1]:.3f}, p99 {p99[-1]:.2f}"
        )
    print(
        f"median on/off: throughput {statistics.median(rps):.3f} (pairs {min(rps):.3f}–{max(rps):.3f}), "
        f"p99 {statistics.median(p99):.2f} (pairs {min(p99):.2f}–{max(p99):.2f})"
    )


if __name__ == "__main__":
    main()
