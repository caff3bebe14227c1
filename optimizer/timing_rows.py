"""How many held-out rows the speed timing runs at once: --timing-batch, fewer where that batch would not fit.

The paired timing (`optimizer.speed.time_alternating`, in the INT8 search and in the speed gate) holds an FP32 and an
INT8 session in one child, each keeping ONNX Runtime's CPU arena: their activations at the timing batch stay
resident. rembg's U²-Net-p (320², 7 mask outputs) at the default batch 8 peaked at 7.1 GB (session 46; FP32 alone
4.3 GB, growing by 0.47 GB a row, where shape inference's activation sum said 4.6 GB a row), `--timing-batch 2`
kept the whole optimize at 3.1 GB. So the FP32 session's footprint is measured, not estimated from shapes: a fresh
child (as the timing child starts) creates it and runs one row twice, then four rows twice; what the three rows
beyond the first added at peak is three rows' cost (at least a quarter of one row's run each), the rest of one row's
run a run's workspace, counted once (CREPE's 176 MB of it were counted once a row: "batch 8 would need ~3.3 GB"; 1.4
GB counted now, 0.40 GB held). Both sessions are counted at the FP32 row's cost (an INT8 model's activations were
at most FP32's in every candidate measured), and the batch is lowered to what fits `allowed_bytes`, saying so in the
output and in the manifest ("timed at batch 2, not 8: batch 8 would need ~5.9 GB"). The count is an estimate: the
U²-Net-p child held 2.64 GB at batch 3 where it counted 2.33 GB (the arena grows in steps), hence the margin below.
An FP32 build times nothing, so its footprint is measured alone (`start_fp32_footprint`), beside its verification,
for deploy to weigh --max-batch against (`serving.batch_memory`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from optimizer.onnxruntime_runner import quiet_onnxruntime
from optimizer.speed import run_child, timing_session
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

# What the timing child's two sessions may hold as counted: with optimize's own process beside it (1.05 GB for
# U²-Net-p while the child timed) and the count's 13 % short of the child's real peak, within the 4 GB issue 9 asks of
# a whole optimize run (2.5 GB let U²-Net-p time batch 3, 3.69 GB in all). Never more than AVAILABLE_SHARE of what the
# machine has free when the batch is chosen: a smaller machine, or one whose memory others hold, gets a smaller batch.
TIMING_MEMORY_BYTES = 2000 << 20
AVAILABLE_SHARE = 0.5
FOOTPRINT_RUNS = 2  # the second run of one row grew RSS further (U²-Net-p: 0.36 GB after one, 0.56 GB after two)
FOOTPRINT_ROWS = 4  # rows of the second measured run: what they add beyond one row is the cost of a row
GB = 1e9
FOOTPRINT_KEY = "footprint"  # a stage record's figures, as `serving.batch_memory` reads them (beside `TimingRows`')


@dataclass(frozen=True)
class Footprint:
    """One FP32 session as the timing child holds it: its RSS once created, what each row's run adds at peak, and
    what a run adds whatever its rows (its kernels' workspace: `fixed_bytes`, where a run of more rows was measured)."""

    session_bytes: int
    row_bytes: int
    fixed_bytes: int = 0


@dataclass(frozen=True)
class TimingRows:
    """The rows timed at once, the rows asked (--timing-batch), and the measured figures behind a lowered batch."""

    rows: int
    asked: int
    need_bytes: int = 0  # what the asked batch would hold in the paired child (0: not measured)
    allowed_bytes: int = 0
    given: bool = False  # --timing-batch was given: `allowed_bytes` is half the memory free, not the fixed share
    # what was measured, kept in the manifest: deploy weighs --max-batch against it (serving.batch_memory)
    footprint: Footprint | None = None
    held_out: int = 0  # the held-out rows, where fewer than `asked`: the batch could be no larger (0: not short)

    @property
    def lowered(self) -> bool:
        return self.rows < self.asked

    def note(self) -> str:
        """E.g. "timed at batch 2, not 8: batch 8 would need ~7.7 GB of memory, 2.6 GB allowed", or where the
        held-out rows were fewer than asked, "timed at batch 6, not 8: only 6 held-out rows to time (…)"; "" where not
        lowered. No memory figure where none decided: probe 66C's 6 held-out rows read "batch 8 would need ~0.0 GB"."""
        if not self.lowered:
            return ""
        allowed = "half the memory free" if self.given else "allowed (pass a smaller --timing-batch to choose it)"
        short = f"only {self.held_out} held-out rows" if self.held_out else ""
        if short and self.rows >= self.held_out:  # the rows, not memory, decided
            return (
                f"timed at batch {self.rows}, not {self.asked}: {short} to time (pass --eval with at least "
                f"{self.asked} rows, or --timing-batch {self.held_out} to choose it)"
            )
        fitted = min(self.asked, self.held_out) if self.held_out else self.asked  # the batch whose memory was weighed
        return (
            f"timed at batch {self.rows}, not {self.asked}: {short + ', and ' if short else ''}batch {fitted} would "
            f"need ~{self.need_bytes / GB:.1f} GB of memory to time FP32 and INT8 side by side, "
            f"{self.allowed_bytes / GB:.1f} GB {allowed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "note": self.note()}


def allowed_bytes(available: int, given: bool = False) -> int:
    """What the paired timing may hold: TIMING_MEMORY_BYTES, or AVAILABLE_SHARE of `available` where that is less;
    for a --timing-batch the user `given`, that share alone (their server's batch, timed where memory allows)."""
    share = int(available * AVAILABLE_SHARE)
    return share if given else min(TIMING_MEMORY_BYTES, share)


def paired_bytes(footprint: Footprint, rows: int) -> int:
    """The paired child's peak at `rows` rows: two sessions, each counted at the FP32 session's size and row cost."""
    return 2 * (footprint.session_bytes + footprint.fixed_bytes + rows * footprint.row_bytes)


def rows_that_fit(footprint: Footprint, asked: int, allowed: int, given: bool = False) -> TimingRows:
    """The most rows up to `asked` whose paired peak fits `allowed`; at least one (a row is what is served)."""
    rows = asked
    while rows > 1 and paired_bytes(footprint, rows) > allowed:
        rows -= 1
    return TimingRows(rows, asked, paired_bytes(footprint, asked), allowed, given)


def fit_timing_rows(fp32: Path, data: TensorData, asked: int, threads: int, given: bool = False) -> TimingRows:
    """--timing-batch `asked`, or fewer where its paired timing would not fit (`rows_that_fit`); the footprint is
    measured in a child only where there is a batch to lower (an --unbatched build times one request whole)."""
    if data.unbatched:  # each run is one request whatever the batch (`TensorData.batches`): no batch to lower
        return TimingRows(1, 1)
    held_out = len(data) if len(data) < asked else 0  # the batch can be no larger: said so, not as memory
    if asked <= 1 or len(data) <= 1:
        return TimingRows(min(asked, max(1, len(data))), asked, held_out=held_out)
    fitted = min(asked, len(data))  # all there is: `speed.timing_batch` takes no more
    more = min(fitted, FOOTPRINT_ROWS)
    footprint = measure_footprint(fp32, next(data.batches(1)), threads, next(data.batches(more)), more)
    rows = rows_that_fit(footprint, fitted, allowed_bytes(psutil.virtual_memory().available, given), given)
    rows = replace(rows, asked=asked, held_out=held_out)
    return replace(rows, footprint=footprint)


def searched_rows(stages: Sequence[Mapping[str, Any]]) -> TimingRows | None:
    """The rows the INT8 search timed its candidates at (its stage record), for the gate to time the same batch
    without measuring again; None where no search ran."""
    for stage in stages:
        rows = (stage.get("speed") or {}).get("timing_rows")
        if rows:
            footprint = rows.get("footprint")
            fields = {k: v for k, v in rows.items() if k not in ("note", "footprint")}
            return TimingRows(**fields, footprint=Footprint(**footprint) if footprint else None)
    return None


def start_fp32_footprint(fp32: Path, data: TensorData, threads: int) -> Future[Footprint] | None:
    """`measure_footprint` of an FP32 build's session on a row and FOOTPRINT_ROWS rows of `data`, in a thread while
    the build verifies: its child took 0.65-2 s, where the demo's FP32 build takes 2.6 s; beside it, the build waited
    at most 0.06 s for it (a tiny model's 0.06 s build: 0.3 s). None where no batch is served (an --unbatched build)
    or there are no rows."""
    if data.unbatched or len(data) == 0:
        return None
    more = min(len(data), FOOTPRINT_ROWS)
    row, rows = next(data.batches(1)), next(data.batches(more))  # read here: the build reads `data` meanwhile
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fp32-footprint")
    measuring = pool.submit(measure_footprint, fp32, row, threads, rows, more)
    pool.shutdown(wait=False)  # the thread ends with its child
    return measuring


def footprint_record(measuring: Future[Footprint]) -> dict[str, Any]:
    """What an FP32 build's stage record keeps of `start_fp32_footprint`: the figures, or why there are none."""
    try:
        return {FOOTPRINT_KEY: asdict(measuring.result())}
    except Exception as exc:  # deploy's warning alone reads it: noted, never failing the build it would inform
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        return {"footprint_note": f"the FP32 session's memory was not measured ({why}); deploy cannot weigh a batch"}


def measure_footprint(
    fp32: Path, row: dict[str, np.ndarray], threads: int, more: dict[str, np.ndarray] | None = None, rows: int = 1
) -> Footprint:
    """The FP32 session's size and one row's cost, measured in a fresh child (`python -m optimizer.timing_rows`); with
    `more` (a batch of `rows` rows), a row's cost is what the rows beyond the first added, the rest of one row's run
    counted once (`fixed_bytes`)."""
    with tempfile.TemporaryDirectory(prefix="quantserve-footprint-") as tmp:
        feeds, result = Path(tmp) / "row.npz", Path(tmp) / "footprint.json"
        np.savez(feeds, **row)  # type: ignore[arg-type]
        argv = [sys.executable, "-m", "optimizer.timing_rows", str(fp32), str(feeds), str(result)]
        argv += ["--threads", str(threads)]
        if more is not None and rows > 1:
            np.savez(Path(tmp) / "more.npz", **more)  # type: ignore[arg-type]
            argv += ["--more", str(Path(tmp) / "more.npz"), "--more-rows", str(rows)]
        run_child(argv, fp32, doing="measuring the memory of")
        return Footprint(**json.loads(result.read_text()))


def _footprint_here(
    fp32: Path, row: dict[str, np.ndarray], threads: int, more: dict[str, np.ndarray] | None = None, rows: int = 1
) -> Footprint:
    """In the child: the session as `speed.time_alternating` makes it, then FOOTPRINT_RUNS runs of one row, and of
    `more` (`rows` rows) where given. Counted from one row alone, a run's workspace was counted once a row: CREPE's
    "batch 8 would need ~3.3 GB" (176 MB a row) held 0.40 GB at batch 8, FP32 and INT8 together (session 51)."""
    session = timing_session(fp32, threads)
    created = psutil.Process().memory_info().rss
    for _ in range(FOOTPRINT_RUNS):
        session.run(None, row)
    one = max(0, _peak_rss() - created)
    if more is None or rows <= 1:
        return Footprint(created, one)
    for _ in range(FOOTPRINT_RUNS):
        session.run(None, more)
    # at least a `rows`-th of one row's run: an arena one row's run grew past what `rows` rows need (CREPE: 4 rows
    # added nothing) still grows in steps at a larger batch
    per_row = max((_peak_rss() - created - one) // (rows - 1), one // rows)
    return Footprint(created, per_row, max(0, one - per_row))


def _peak_rss() -> int:
    """This process's peak RSS: /proc's VmHWM, which starts afresh at exec. Not getrusage's ru_maxrss: Linux keeps that
    across exec, so a child of a 4 GB optimize read 4 GB before loading anything (a 16-wide MatMul "needed" 4.3 GB)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: ru_maxrss (bytes on macOS), at worst the parent's, which lowers the batch
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m optimizer.timing_rows FP32 ROW.npz OUT.json`: write the FP32 session's footprint to OUT.json."""
    parser = argparse.ArgumentParser(prog="python -m optimizer.timing_rows")
    parser.add_argument("fp32", type=Path)
    parser.add_argument("row", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--more", type=Path, default=None)
    parser.add_argument("--more-rows", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_onnxruntime()  # our stderr is read back: its last line is a failure's reason
    with np.load(args.row, allow_pickle=False) as npz:
        row = {name: npz[name] for name in npz.files}
    more = None
    if args.more is not None:
        with np.load(args.more, allow_pickle=False) as npz:
            more = {name: npz[name] for name in npz.files}
    try:
        footprint = _footprint_here(args.fp32, row, args.threads, more, args.more_rows)
    except QuantserveError as exc:
        print(exc, file=sys.stderr)
        return QuantserveError.exit_code
    args.out.write_text(json.dumps(asdict(footprint)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
