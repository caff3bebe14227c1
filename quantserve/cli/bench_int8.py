"""In-process INT8 vs FP32 benchmark of two builds with ONNX Runtime, side by side in one run.

`python -m quantserve.cli.bench_int8 [--fp32 build/demo/digits_fp32 --int8 build/demo/digits_int8]`
(what `make benchmark` runs after `make demo`). Rounds alternate FP32 and INT8 so that noise from
a shared machine hits both alike; the figure reported is the median round. Prints a table with
the INT8/FP32 ratio and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from quantserve.artifact import Manifest
from quantserve.cli.bench_inprocess import session
from quantserve.data import load_npz
from quantserve.errors import QuantserveError


@dataclass
class BenchmarkRow:
    """Median samples/s of each precision at one batch size and thread count."""

    batch: int
    threads: int
    fp32_samples_per_s: float
    int8_samples_per_s: float

    @property
    def speedup(self) -> float:
        return self.int8_samples_per_s / self.fp32_samples_per_s


def samples_per_s(sess: object, feeds: dict[str, np.ndarray], seconds: float) -> float:
    """Throughput of repeated `run` calls on one batch over about `seconds`."""
    batch = len(next(iter(feeds.values())))
    sess.run(None, feeds)  # type: ignore[attr-defined]
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        sess.run(None, feeds)  # type: ignore[attr-defined]
        runs += 1
    return runs * batch / elapsed


def measure(models: dict[str, Path], feeds: dict[str, np.ndarray], threads: int, rounds: int, seconds: float) -> dict:
    sessions = {precision: session(path, threads) for precision, path in models.items()}
    figures: dict[str, list[float]] = {precision: [] for precision in models}
    for _ in range(rounds):
        for precision, sess in sessions.items():
            figures[precision].append(samples_per_s(sess, feeds, seconds))
    return {precision: statistics.median(values) for precision, values in figures.items()}


def model_path(build: Path) -> Path:
    manifest = Manifest.load(build)
    return build / manifest.files["model"]


def run(args: argparse.Namespace) -> list[BenchmarkRow]:
    models = {"fp32": model_path(args.fp32), "int8": model_path(args.int8)}
    data = load_npz(args.data)
    rows = []
    for threads in args.threads:
        for batch in args.batches:
            if batch > len(data):
                raise QuantserveError(f"{args.data}: {len(data)} samples, fewer than batch {batch}")
            feeds = next(data.batches(batch))
            medians = measure(models, feeds, threads, args.rounds, args.seconds)
            rows.append(BenchmarkRow(batch, threads, medians["fp32"], medians["int8"]))
            print(f"batch {batch:3d} threads {threads}: {rows[-1].speedup:.2f}×", flush=True)
    return rows


def print_table(rows: list[BenchmarkRow]) -> None:
    print("\n| batch | threads | FP32 samples/s | INT8 samples/s | INT8 / FP32 |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.batch} | {r.threads} | {r.fp32_samples_per_s:.0f} | {r.int8_samples_per_s:.0f} | {r.speedup:.2f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, default=Path("build/demo/digits_fp32"))
    parser.add_argument("--int8", type=Path, default=Path("build/demo/digits_int8"))
    parser.add_argument("--data", type=Path, default=Path("build/demo/heldout.npz"))
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round and precision")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmark/inprocess.json"))
    args = parser.parse_args()
    try:
        rows = run(args)
    except QuantserveError as exc:
        raise SystemExit(f"quantserve: error: {exc}") from None
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([dict(asdict(r), speedup=r.speedup) for r in rows], indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
