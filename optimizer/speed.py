"""FP32 vs INT8 speed in-process: is the INT8 model really faster on this machine, as it will be served?

One timing basis, used by `optimize`'s speed gate and re-used by every figure reported beside it
(`python -m examples.pretrained bench` calls `compare_speed` with the basis the manifest recorded):

- **The batch:** the first `batch_size` rows of the held-out data as the user gave them (their
  sequence length and padding are those of the requests to be served); `batch_size` is
  `--timing-batch`, default 8 — set it to the batch the server will form (Triton's dynamic batcher:
  1 when idle, up to `--max-batch` under load). The input shapes timed are recorded.
- **The session:** as the embedded target's Python backend runs the model: CPU provider, every
  graph optimization, `intra_op_num_threads` = the target's threads (all cores by default; an
  explicit count, so ORT does not pin its workers as it does for 0), `inter_op_num_threads` 1.
- **The clock:** both models in a fresh child process (`python -m optimizer.speed_child`), their runs
  alternated one by one, the order swapped every pair, each pair's FP32/INT8 ratio taken from two
  runs a few milliseconds apart: whatever the machine does meanwhile (other processes, a VM
  neighbour, the clock) moves both. The sessions run with ORT's spinning off, or the idle session's
  workers spin on the cores the other one needs (DESIGN.md pitfall). Measured on a 2-core EPYC VM,
  all-MiniLM at batch 8, idle: the same file against itself gave 0.81-1.04x (median of three
  rounds) and per-round ratios 0.68-1.56x when each model was timed in its own child one after the
  other; alternated in one child, 0.997-1.006x, pairs' interquartile range 0.95-1.05x. A fresh
  process, not the caller's: a long-lived process carries other libraries' threads and pages.
- **The ratio:** `rounds` blocks (3 by default), each a child of its own: at least `repeats` pairs,
  more to fill `2 × seconds_per_model / rounds`; a block's ratio is the median of its pairs' ratios,
  the speedup the median of the blocks'. The ms beside it are one pair's, the median pair of the median
  block (`median_index`), so they show its ratio (each model's medians taken apart said 8.65 → 9.5 ms
  beside 1.10×). Blocks in separate processes, because one process's pairs agree closely with each
  other and less with the next process's (the same encoder files: 1.54x in one child, 1.34x in the
  next, each within ±1 %). A median of paired ratios is not moved by one burst of load, and a ratio
  of separately taken medians is (see BENCHMARKS.md: an encoder's bench timing said 2.74x where this
  basis said 1.40x for the same two files). Spinning off costs both models a wake-up per parallel
  region; the served Python backend keeps ORT's default.
- **The machine:** while a child times, it reads how much CPU the other processes took
  (/proc/stat less its own); the median share over the timings is recorded, and above
  `BUSY_SHARE` a block is busy: on 2 shared cores at load 7 the paired rounds of one encoder
  spanned 0.3×-10×, so the wall clock is not honest there. Busy blocks are retaken (up to `rounds`
  more) and left out when two or more quiet ones exist; when they cannot be, the figure is marked
  busy and the verdict line says so. Each run's CPU time is read beside its wall time: on a busy machine the
  blocks' CPU-time ratios decide (a run waiting for the cores stretches its wall time, not its CPU time), and a
  clock that shows INT8 slower than FP32 while the deciding one clears the bar refuses the build
  (`optimizer.speed_blocks`: liveness, refused at 1.04× by the wall clock 51 % busy, read 1.11-1.18× by CPU time).
- **The verdict** (`optimizer.speed_verdict`): the median round must clear the bar and its lower
  confidence bound 1.0; rounds that straddle the verdict are retaken within the same bounds, and a
  median over rounds that stay unsettled is refused as uncertain, not shipped on a busy machine's luck.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.cpu_clock import BUSY_SHARE, CpuClock
from optimizer.cpu_isa import read_cpuinfo
from optimizer.drift_budget import Refusal
from optimizer.drift_evidence import within_budget_words
from optimizer.speed_blocks import (
    CPU_TIME,
    BasisVerdict,
    Block,
    basis_note,
    decide,
    disagree_line,
    judged_blocks,
    take_blocks,
    uncertain_basis_line,
)
from optimizer.speed_share import amdahl_ceiling, noise_reason
from optimizer.speed_share import compute_share as _compute_share  # the name tests stub in this module
from optimizer.speed_verdict import (
    LOW_INT8_SHARE,
    SLOWER,
    UNCERTAIN,
    RoundsVerdict,
    median_index,
    sliver_reason,
    subgraph_note,
)
from quantserve.data import TensorData, batch_rows
from quantserve.errors import InternalError, QuantserveError
from quantserve.metrics import beside_bar

WARMUP_RUNS = 3
# Warm-up pairs past the first stop once they took this long: one run settles ORT's allocations and kernel choice,
# and three warm-up pairs of a YOLOv8-seg at batch 8 (640²) took 20-40 s of every block on 2 cores.
WARMUP_SECONDS = 1.0


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
    batch_size: int = 8  # rows of the held-out data per timed run: the request batch to be served
    batch_given: bool = False  # --timing-batch given: lowered only where it would not fit half the memory free
    seconds_per_model: float = 1.0  # timing budget per model over all blocks, warm-up excluded
    repeats: int = 5  # pairs per block at least
    rounds: int = 3  # blocks of alternated pairs, up to twice as many where busy or unsettled (`take_blocks`)

    def __post_init__(self) -> None:
        if min(self.batch_size, self.repeats, self.rounds) < 1 or min(self.min_speedup, self.seconds_per_model) <= 0:
            raise QuantserveError(
                "speed settings must be positive: --min-speedup, --timing-batch, repeats and seconds per model"
            )


@dataclass(frozen=True)
class SpeedRecord:
    """FP32 and INT8 ms per batch, their ratio, and the machine they were timed on."""

    # One measured pair: the median pair of the median block (`Block`, `median_index`), so fp32_ms / int8_ms is that
    # block's ratio (for an odd count of pairs; the lower middle pair's for an even one, beside the mean of the two).
    fp32_ms: float
    int8_ms: float
    speedup: float  # the median of the blocks' ratios (`round_speedups`): above 1, INT8 is faster
    min_speedup: float
    batch_size: int
    threads: int
    cpu: str
    round_speedups: tuple[float, ...] = ()  # one FP32/INT8 ratio per block of pairs; `speedup` is their median
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # the batch timed, e.g. input_ids [8, 32]
    others_share: float | None = None  # share of the cores others used, median over the timings (None: unknown)
    busy_rounds_dropped: int = 0  # blocks left out because the machine was busy while they were timed
    int8_mac_share: float | None = None  # share of multiply-adds INT8 runs (None: not read, or the graph cannot say)
    fp32_compute: dict[str, int] = field(default_factory=dict)  # op type -> compute nodes left FP32, most MACs first
    kept_for_drift: str = ""  # why they are: the mixed-precision search kept them to hold the budget (`drift_kept`)
    batch_asked: int = 0  # --timing-batch, where `batch_size` is fewer: too few rows or memory (`timing_rows`)
    # "timed at batch 2, not 8: batch 8 would need ~7.7 GB …" (`TimingRows.note`); or a value-length build's request
    # timed, "timed on answers of different lengths: …" (`value_length_int8.timed_request`)
    batch_note: str = ""
    cpu_speedup: float | None = None  # the median of the blocks' CPU-time ratios (`Block.cpu_ratio`; None: not read)
    cpu_round_speedups: tuple[float, ...] = ()  # one per block: on a busy machine they decide (`speed_blocks`)

    @property
    def busy(self) -> bool:
        """Timed while other processes took a noticeable share of the cores: the figure is not to be trusted."""
        return self.others_share is not None and self.others_share > BUSY_SHARE

    @property
    def holds(self) -> bool:
        """The deciding clock's median clears the bar and its lower bound clears 1.0 (`optimizer.speed_verdict`), the
        other clock does not show INT8 slower (`speed_blocks.decide`), and the INT8 share of the multiply-adds can
        reach the bar at all (`int8_capped`): else the clock's pass was noise."""
        return self.judged().ships and not self.int8_capped()

    def int8_capped(self) -> bool:
        """Even a generous per-op INT8 gain on its share of the multiply-adds cannot reach --min-speedup (Amdahl)."""
        share = self.int8_mac_share
        return share is not None and amdahl_ceiling(share) < self.min_speedup

    def verdict(self) -> RoundsVerdict:
        """What the deciding clock's rounds show (a record without rounds: its speedup as the one round)."""
        return self.judged().verdict

    def judged(self) -> BasisVerdict:
        """The rounds by the wall clock, or by CPU time where the machine was busy (`speed_blocks.decide`)."""
        return decide(self.round_speedups or (self.speedup,), self.cpu_round_speedups, self.min_speedup, self.busy)

    def line(self, drift_holds: bool | None = None, thin: Sequence[Mapping[str, Any]] = ()) -> str:
        """E.g. "INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"; with `drift_holds`, whether the drift
        held too, so the user knows whether --allow-slower would ship a faithful model; `thin`: the verification's
        thin-evidence entries, on whose few rows it held (`drift_evidence.within_budget_words`)."""
        bar = "" if self.min_speedup == 1.0 else f", below --min-speedup {self.min_speedup:g}"
        drift = "" if drift_holds is None else "; its drift misses the budget too"
        if drift_holds:
            drift = f"; its drift is {within_budget_words(thin)}"
        if self.int8_capped() and self.verdict().outcome != SLOWER:  # the clock cleared the bar: noise
            reason = noise_reason(self.speedup, self.int8_mac_share or 0.0, self.fp32_compute, self.min_speedup)
            text = f"{reason}; {self.sliver_cause()}; deploy fp32 (or pass --allow-slower){drift}"
        elif self.int8_sliver():
            text = (
                f"INT8 is {beside_bar(self.speedup, self.min_speedup)}× FP32 here{bar}: {self.sliver_reason()}; "
                f"{self.sliver_cause()}; deploy fp32 (or pass --allow-slower){drift}"
            )
        elif self.judged().disagree:  # the deciding clock shows INT8 faster, the other slower than FP32
            text = disagree_line(self.judged(), self.others_share, self.busy, drift)
        elif self.verdict().outcome == UNCERTAIN:  # the median clears the bar, its lower bound does not
            text = uncertain_basis_line(self.judged(), self.others_share, drift)
        else:
            judged = self.judged()
            shown = beside_bar(judged.verdict.median if judged.basis == CPU_TIME else self.speedup, self.min_speedup)
            inside = subgraph_note(self.fp32_compute)  # a loop body's FP32 compute: no share says it (session 67)
            text = f"INT8 is {shown}× FP32 here{bar}{inside}; deploy fp32 (or pass --allow-slower){drift}"
            text += basis_note(judged, self.others_share) if judged.basis == CPU_TIME else self.busy_note()
        return Refusal(text, {"refused_for": "speed", "speed": self.to_dict()})

    def int8_sliver(self) -> bool:
        """INT8 runs under LOW_INT8_SHARE of the multiply-adds: no machine, busy or idle, makes it faster."""
        return self.int8_mac_share is not None and self.int8_mac_share < LOW_INT8_SHARE

    def sliver_reason(self) -> str:
        """E.g. "only 0.03 % of multiply-adds are INT8 (LSTM ×3 stays FP32: ...)" (`speed_verdict.sliver_reason`)."""
        return sliver_reason(self.int8_mac_share or 0.0, self.fp32_compute)

    def sliver_cause(self) -> str:
        """Why INT8 covers a sliver: the drift budget, where the mixed-precision search kept the rest FP32 to hold it
        (a captcha reader's full INT8 ran 2.01× and missed it; "INT8 cannot be faster here" told its user the model
        could not be quantized at all, session 43), else that no INT8 run of this graph can be faster."""
        if self.kept_for_drift:
            return f"{self.kept_for_drift}; no INT8 model that holds the budget is faster here"
        return "INT8 cannot be faster here"

    def busy_note(self) -> str:
        """E.g. "; timed on a busy machine (other processes used 80% of the cores): time again when idle"."""
        if not self.busy or self.others_share is None:
            return ""
        share = f"{self.others_share:.0%}"
        return f"; timed on a busy machine (other processes used {share} of the cores): time again when idle"

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict()
        judged = {"verdict": verdict.outcome, "speedup_low": verdict.low}  # the median's lower bound over the rounds
        judged["basis"] = self.judged().basis  # the clock that decided: CPU time on a busy machine (`speed_blocks`)
        ceiling = None if self.int8_mac_share is None else amdahl_ceiling(self.int8_mac_share)  # `int8_capped`'s
        return {**asdict(self), "holds": self.holds, "busy": self.busy, **judged, "int8_ceiling": ceiling}


def cpu_model() -> str:
    """The CPU's model name (as `lscpu` prints it), for every recorded figure."""
    for line in read_cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def timing_batch(data: TensorData, settings: SpeedSettings) -> dict[str, np.ndarray]:
    """The batch both models are timed on: the first `settings.batch_size` rows of `data` (all, if fewer)."""
    if len(data) == 0:
        raise QuantserveError("no held-out samples to time FP32 and INT8 on")
    return next(data.batches(settings.batch_size))


def compare_speed(
    fp32: Path,
    int8: Path,
    batch: dict[str, np.ndarray],
    settings: SpeedSettings,
    samples: int | None = None,
    kept_for_drift: str = "",
) -> SpeedRecord:
    """Time FP32 and INT8 on one batch, alternating run by run; speedup = the median of the blocks' ratios. The batch
    holds `samples` samples (default: its axis 0; one where it is an --unbatched build's whole sample, whose axis 0 is
    its frames: key_cnn's timing read "batch 100").

    Each block is one fresh child process timing alternated pairs (its ratio: the median of its pairs'
    FP32/INT8 ratios). A block timed while other processes took the cores (above `BUSY_SHARE`) says
    little: up to `rounds` more blocks are taken until `rounds` quiet ones exist and their ratios settle
    the verdict (`take_blocks`), and the figure comes from the quiet blocks when there are at least two;
    otherwise from all of them, marked busy. The INT8 share of the multiply-adds is read whatever the clock said: a
    sliver timed faster is noise (`SpeedRecord.int8_capped`; faceres, session 64)."""
    threads = settings.threads or os.cpu_count() or 1
    blocks = take_blocks(
        lambda: time_pair(fp32, int8, batch, threads, settings), settings.rounds, min_speedup=settings.min_speedup
    )
    used = judged_blocks(blocks)
    shares = [b.others_share for b in used if b.others_share is not None]
    cpu = tuple(b.cpu_ratio for b in used if b.cpu_ratio is not None)
    cpu = cpu if len(cpu) == len(used) else ()  # every block's, or none: one clock's rounds judge the same blocks
    middle = used[median_index([b.ratio for b in used])]
    record = SpeedRecord(
        fp32_ms=middle.fp32_ms,
        int8_ms=middle.int8_ms,
        speedup=statistics.median(b.ratio for b in used),
        round_speedups=tuple(b.ratio for b in used),
        min_speedup=settings.min_speedup,
        batch_size=samples if samples is not None else batch_rows(batch),
        threads=threads,
        cpu=cpu_model(),
        input_shapes={name: list(array.shape) for name, array in batch.items()},
        others_share=round(statistics.median(shares), 3) if shares else None,
        busy_rounds_dropped=len(blocks) - len(used),
        cpu_speedup=statistics.median(cpu) if cpu else None,
        cpu_round_speedups=cpu,
    )
    whole = samples is not None and samples != batch_rows(batch)  # an --unbatched build's sample
    share, kept = _compute_share(fp32, int8, batch, whole)
    return replace(record, int8_mac_share=share, fp32_compute=kept, kept_for_drift=kept_for_drift)


def time_pair(
    fp32: Path,
    int8: Path,
    batch: dict[str, np.ndarray],
    threads: int,
    settings: SpeedSettings,
    timeout_s: float | None = None,
) -> Block:
    """One block of alternated runs of `fp32` and `int8` on `batch`, in a fresh child process; one still running
    after `timeout_s` (the INT8 search's deadline) is killed, waited for, and subprocess.TimeoutExpired raised."""
    with tempfile.TemporaryDirectory(prefix="quantserve-speed-") as tmp:
        feeds, result = Path(tmp) / "batch.npz", Path(tmp) / "speed.json"
        np.savez(feeds, **batch)  # type: ignore[arg-type]
        argv = [sys.executable, "-m", "optimizer.speed_child", str(fp32), str(int8), str(feeds), str(result)]
        argv += ["--threads", str(threads), "--seconds", str(2 * settings.seconds_per_model / settings.rounds)]
        argv += ["--min-pairs", str(settings.repeats)]
        run_child(argv, int8, timeout_s)
        return Block(**json.loads(result.read_text()))


def run_child(argv: list[str], model: Path, timeout_s: float | None = None, doing: str = "timing") -> None:
    """Run a `python -m optimizer.…` child with this checkout on its path: its one-line QuantserveError raised as
    such, any other failure an InternalError naming what it was `doing` with `model` (`timing_rows` measures too)."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=timeout_s)
    if done.returncode == QuantserveError.exit_code:
        raise QuantserveError(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InternalError(f"{doing} {model} failed in its child process (exit {done.returncode}): {tail}")


def time_alternating(
    models: tuple[Path, Path], batch: dict[str, np.ndarray], threads: int, seconds: float, min_pairs: int
) -> Block:
    """Warm both sessions up, then pairs of runs back to back for `seconds`, the order swapped every pair."""
    sessions = tuple(timing_session(model, threads) for model in models)

    def run_ms(session: Any, cpu_ms: list[float]) -> float:
        started, cpu = time.perf_counter(), time.process_time()  # the child's own CPU time: ORT's workers included
        session.run(None, batch)
        cpu_ms.append((time.process_time() - cpu) * 1000.0)
        return (time.perf_counter() - started) * 1000.0

    started, warmups = time.perf_counter(), 0
    while warmups < WARMUP_RUNS and (not warmups or time.perf_counter() - started < WARMUP_SECONDS):
        for session in sessions:
            session.run(None, batch)
        warmups += 1
    pair_ms = (time.perf_counter() - started) * 1000.0 / warmups
    pairs = max(min_pairs, int(seconds * 1000.0 / max(pair_ms, 1e-3)))
    fp32_ms: list[float] = []
    int8_ms: list[float] = []
    fp32_cpu: list[float] = []
    int8_cpu: list[float] = []
    clock = CpuClock.now()
    for pair in range(pairs):
        if pair % 2:  # INT8 first every other pair: neither model always runs on the other's warm caches
            int8_ms.append(run_ms(sessions[1], int8_cpu))
            fp32_ms.append(run_ms(sessions[0], fp32_cpu))
        else:
            fp32_ms.append(run_ms(sessions[0], fp32_cpu))
            int8_ms.append(run_ms(sessions[1], int8_cpu))
    return Block.of_pairs(fp32_ms, int8_ms, clock.others_share(), fp32_cpu, int8_cpu)


def timing_session(model: Path, threads: int) -> Any:
    """`model`'s session as the paired timing runs it (`optimizer.timing_rows` measures its footprint the same way)."""
    import onnxruntime as ort

    from optimizer.onnxruntime_runner import session_options

    options = session_options("all", threads)
    options.inter_op_num_threads = 1  # as the embedded target's Python backend runs it
    # Two sessions alternate in one process: with ORT's default spinning, the idle one's workers spin on
    # the cores the other needs (measured: the same file against itself paired 0.55-1.88x, interquartile).
    # session_options turns spinning off already (adding the entry again made ORT warn that it overwrote it).
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise QuantserveError(f"{model}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})") from exc
