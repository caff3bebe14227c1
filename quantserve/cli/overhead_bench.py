"""Measure the Locust client's own overhead: served throughput at saturation vs in-process ONNX Runtime.

    python -m quantserve.cli.overhead_bench --out reports/overhead [--onnx MODEL.onnx --data INPUTS.npz]

Without `--onnx` it uses a tiny MLP whose compute is negligible, so what it measures is the
cost of the request path (Locust + gRPC + Triton + the Python backend), not of the model.
Client CPU is the Locust processes' own CPU time (`RUSAGE_CHILDREN`) over the measured window.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.artifact import MODEL_FILE, Manifest, TensorSpec
from quantserve.data import TensorData, load_npz
from quantserve.errors import QuantserveError
from quantserve.json_files import strict_json


def tiny_mlp(directory: Path) -> tuple[Path, Path]:
    """A 32→128→10 MLP build folder (model.onnx + manifest) and 256 input samples."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {"W1": rng.normal(size=(32, 128)), "W2": rng.normal(size=(128, 10))}
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["h0"]),
            helper.make_node("Relu", ["h0"], ["h"]),
            helper.make_node("MatMul", ["h", "W2"], ["logits"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()],
    )
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), directory / MODEL_FILE)
    inputs = [TensorSpec("x", "float32", ("batch", 32))]
    outputs = [TensorSpec("logits", "float32", ("batch", 10))]
    Manifest("mlp", inputs, outputs, target="embedded", files={"model": MODEL_FILE}).save(directory)
    data = TensorData({"x": rng.normal(size=(256, 32)).astype(np.float32)})
    return directory, data.save(directory / "inputs.npz")


def build_dir_for(onnx_path: Path, data_path: Path, directory: Path) -> Path:
    """A build folder around a user's ONNX file (inputs/outputs read from the model)."""
    import onnx

    model = onnx.load(str(onnx_path))
    data = load_npz(data_path)

    def spec(value: Any) -> TensorSpec:
        dims = value.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.dim_value > 0 else (d.dim_param or "batch") for d in dims)
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        return TensorSpec(value.name, dtype, shape)

    initializers = {i.name for i in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(onnx_path.read_bytes())
    Manifest(onnx_path.stem, inputs, outputs, target="embedded", files={"model": MODEL_FILE}).save(directory)
    if set(data.arrays) != {s.name for s in inputs}:
        raise QuantserveError(
            f"data names {sorted(data.arrays)} do not match the model inputs {[s.name for s in inputs]}"
        )
    return directory


def ort_throughput(onnx_path: Path, data: TensorData, batch: int, seconds: float = 3.0) -> float:
    """Samples per second of one in-process ONNX Runtime session, same threading as the Python backend."""
    import os

    from quantserve.cli.bench import session as ort_session

    session: Any = ort_session(onnx_path, os.cpu_count() or 1)
    feeds = [dict(b) for b in data.take(0, len(data) - len(data) % batch).batches(batch)]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feeds[done % len(feeds)])
        done += 1
    return done * batch / (time.perf_counter() - start)


def served_steps(build: Path, data_path: Path, out: Path, users: list[int], seconds: float) -> list[dict[str, Any]]:
    """Deploy, start tritonserver, and run one closed-loop Locust step per user count (and one with 2 workers)."""
    from loadtest.harness import run_load
    from serving.deploy import deploy
    from serving.server import TritonServer
    from serving.server_options import ServerOptions

    repo = out / "repo"
    deploy(build, repo, "bench", max_batch=64, max_queue_delay_us=500, instances=1)
    steps = []
    with TritonServer(ServerOptions.on_free_ports(repo)) as server:
        for n, workers in [(u, 0) for u in users] + [(users[-1], 2)]:
            cpu_before = _children_cpu_s()
            result = run_load(
                server.grpc_url, "bench", data_path, n, seconds, out / "load",
                metrics_url=server.metrics_url, server_pid=server.pid, workers=workers,
            )  # fmt: skip
            client_cpu = _children_cpu_s() - cpu_before
            steps.append(
                {
                    "users": n,
                    "workers": workers,
                    "throughput_rps": result.throughput_rps,
                    "p50_ms": result.latency.p50_ms,
                    "p99_ms": result.latency.p99_ms,
                    "avg_batch": result.avg_batch_size,
                    "failed": result.failed_requests,
                    "server_cpu_pct": result.utilization.process_cpu_pct_mean if result.utilization else None,
                    # Locust's CPU over its whole life (startup included) per second of measured window.
                    "client_cpu_cores": client_cpu / result.window_s,
                }
            )
            print(strict_json(steps[-1]), flush=True)  # a step with no answer: its latencies NaN, as null
    return steps


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--onnx", type=Path, help="model to measure (default: a tiny MLP)")
    parser.add_argument("--data", type=Path, help=".npz inputs for --onnx")
    parser.add_argument("--users", default="1,4,16,32")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.onnx:
            build, data_path = build_dir_for(args.onnx, args.data, Path(tmp) / "build"), args.data
        else:
            build, data_path = tiny_mlp(Path(tmp) / "build")
        data = load_npz(data_path)
        steps = served_steps(build, data_path, args.out, [int(u) for u in args.users.split(",")], args.seconds)
        batches = sorted({1, max(1, round(max(s["avg_batch"] for s in steps)))})
        ort = {f"batch{b}": ort_throughput(build / MODEL_FILE, data, b) for b in batches}
    summary = {"model": str(args.onnx or "tiny MLP 32-128-10"), "ort_samples_per_s": ort, "served": steps}
    print(write_summary(args.out, summary))


def write_summary(out: Path, summary: dict[str, Any]) -> str:
    """Write overhead.json into `out` as strict JSON (a step's NaN latency as null) and return its text."""
    text = strict_json(summary, indent=2)
    (out / "overhead.json").write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
