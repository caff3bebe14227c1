"""FP32 vs INT8 speed in-process: is the INT8 model really faster on this machine?

Each model is timed alone, in a fresh ONNX Runtime session, in its own child process
(`python -m optimizer.speed`): two sessions timed alternately in one process on a few cores inflate
each other (idle sessions' threads spin — DESIGN.md pitfall). A child warms up, sizes its repeats
from the warm-up so the whole timing stays within a small budget, and reports the median of the
repeats' mean ms per run. The children run in rounds (FP32 then INT8, three times); each round
gives one ratio from two timings taken back to back, and the speedup is the median of those
ratios. Taking each model's best round instead let one lucky INT8 round ship a classifier that
really ran at 0.65× FP32 (measured on a shared machine); a median of paired ratios is not moved by
one burst of load. The thread count is the one the serving target uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import InternalError, QuantserveError

WARMUP_RUNS = 3


@dataclass(frozen=True)
class SpeedSettings:
    """How long and on how many threads to time; `min_speedup` is the bar INT8 must clear to ship."""

    # INT8 must beat FP32 by more than timing noise to count as faster. Measured on a 2-core EPYC:
    # an OCR detector's three gate rounds spanned 0.71-1.09x, and a detector the gate put at 1.14x
    # timed 0.96x in the next measurement. 1.1 is the bar; --min-speedup changes it.
    min_speedup: float = 1.1
    allow_slower: bool = False  # ship a slower INT8 anyway, the figures recorded
    enabled: bool = True
    threads: int = 0  # 0: os.cpu_count(), what the embedded target's ONNX Runtime uses
    batch_size: int = 8
    seconds_per_model: float = 1.0  # timing budget per model over all rounds, warm-up excluded
    repeats: int = 5
    rounds: int = 3

    def __post_init__(self) -> None:
        if min(self.batch_size, self.repeats, self.rounds) < 1 or min(self.min_speedup, self.seconds_per_model) <= 0:
            raise QuantserveError(
                "speed settings must be positive: --min-speedup, batch size, repeats and seconds per model"
            )


@dataclass(frozen=True)
class SpeedRecord:
    """FP32 and INT8 median ms per batch, their ratio, and the machine they were timed on."""

    fp32_ms: float
    int8_ms: float
    speedup: float  # fp32_ms / int8_ms: above 1, INT8 is faster
    min_speedup: float
    batch_size: int
    threads: int
    cpu: str
    round_speedups: tuple[float, ...] = ()  # one FP32/INT8 ratio per round; `speedup` is their median

    @property
    def holds(self) -> bool:
        return self.speedup >= self.min_speedup

    def line(self) -> str:
        """E.g. "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"."""
        bar = "" if self.min_speedup == 1.0 else f", below --min-speedup {self.min_speedup:g}"
        return f"INT8 is {self.speedup:.2f}× FP32 here{bar}; deploy fp32 (or pass --allow-slower)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}


def cpu_model() -> str:
    """The CPU's model name (as `lscpu` prints it), for every recorded figure."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compare_speed(fp32: Path, int8: Path, batch: dict[str, np.ndarray], settings: SpeedSettings) -> SpeedRecord:
    """Time FP32 and INT8 on one batch, each alone in a child process, in rounds; speedup = median of fp32/int8."""
    threads = settings.threads or os.cpu_count() or 1
    rounds = [
        (time_model(fp32, batch, threads, settings), time_model(int8, batch, threads, settings))
        for _ in range(settings.rounds)
    ]
    ratios = tuple(f / i if i > 0 else float("inf") for f, i in rounds)
    return SpeedRecord(
        fp32_ms=statistics.median(r[0] for r in rounds),
        int8_ms=statistics.median(r[1] for r in rounds),
        speedup=statistics.median(ratios),
        round_speedups=ratios,
        min_speedup=settings.min_speedup,
        batch_size=len(next(iter(batch.values()))),
        threads=threads,
        cpu=cpu_model(),
    )


def time_model(model: Path, batch: dict[str, np.ndarray], threads: int, settings: SpeedSettings) -> float:
    """Median ms per `session.run` of `model` on `batch`, measured in a fresh child process."""
    with tempfile.TemporaryDirectory(prefix="quantserve-speed-") as tmp:
        feeds, result = Path(tmp) / "batch.npz", Path(tmp) / "speed.json"
        np.savez(feeds, **batch)  # type: ignore[arg-type]
        argv = [sys.executable, "-m", "optimizer.speed", str(model), str(feeds), str(result)]
        argv += ["--threads", str(threads), "--seconds", str(settings.seconds_per_model / settings.rounds)]
        argv += ["--repeats", str(settings.repeats)]
        _run_child(argv, model)
        return float(json.loads(result.read_text())["ms"])


def _run_child(argv: list[str], model: Path) -> None:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode == QuantserveError.exit_code:
        raise QuantserveError(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InternalError(f"timing {model} failed in its child process (exit {done.returncode}): {tail}")


def time_in_session(model: Path, batch: dict[str, np.ndarray], threads: int, seconds: float, repeats: int) -> float:
    """Warm up, then `repeats` repeats sized to fill `seconds`; the median of their mean ms per run."""
    session = _session(model, threads)
    started = time.perf_counter()
    for _ in range(WARMUP_RUNS):
        session.run(None, batch)
    warm_ms = (time.perf_counter() - started) * 1000.0 / WARMUP_RUNS
    runs = max(1, int(seconds * 1000.0 / repeats / max(warm_ms, 1e-3)))
    means = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(runs):
            session.run(None, batch)
        means.append((time.perf_counter() - started) * 1000.0 / runs)
    return float(statistics.median(means))


def _session(model: Path, threads: int) -> Any:
    import onnxruntime as ort

    from optimizer.onnxruntime_runner import session_options

    options = session_options("all", threads)
    options.inter_op_num_threads = 1  # as the embedded target's Python backend runs it
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise QuantserveError(f"{model}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Child-process entry: time MODEL on BATCH.npz and write {"ms": median} to OUT.json."""
    parser = argparse.ArgumentParser(prog="python -m optimizer.speed")
    parser.add_argument("model", type=Path)
    parser.add_argument("batch", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with np.load(args.batch, allow_pickle=False) as npz:
        batch = {name: npz[name] for name in npz.files}
    try:
        ms = time_in_session(args.model, batch, args.threads, args.seconds, args.repeats)
    except QuantserveError as exc:
        print(exc, file=sys.stderr)
        return QuantserveError.exit_code
    args.out.write_text(json.dumps({"ms": ms}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
