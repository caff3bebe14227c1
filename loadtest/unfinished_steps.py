"""Load-test steps that did not finish: raw records under `raw/<step>` that no saved result holds.

`quantserve loadtest` summarizes a step's raw records and writes `load-<model>.json` only when the run ends (or on
Ctrl-C/SIGTERM, `loadtest.interruption`). Killed outright (SIGKILL, the OOM killer), it writes nothing; its Locust
processes, told by the kernel that their parent died, still close their window and save the raw latencies, the
window's bounds and Triton's counters at both ends (`window.json`). A folder with only those was reported as "run
loadtest or evaluate first". What those records hold is measured as a finished step is (client requests, failures,
latency over the window and per request length, Triton's counters between its ends), and said as such; what only the
killed process had is not: its CPU/GPU samples, its check for a server restarted mid-window, the served precision and
versions, and whether the requests left unanswered at the end were overdue. Nothing here is judged or joins a verdict.
Measured: `kill -9` of an 8-user closed loop 9 s into its window left 15 594 requests in its records, and the
report said nothing but "run loadtest or evaluate first".

A raw folder is a saved step's when a results file names it (its Locust CSV prefix, or the step an interrupt left
out) and its window spans the saved window to the microsecond: a later run into the same folder clears and
rewrites it, so a saved result beside newer records is an older run's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadtest import recording_files
from loadtest.length_figures import LengthFigures, length_figures
from loadtest.load_run import LoadRun
from loadtest.model_gone import gone_at
from loadtest.percentiles import LatencySummary
from loadtest.result_files import safe_name
from loadtest.stage_figures import StageFigures, read_stage_starts, stage_figures
from loadtest.triton_metrics import ServerBreakdown, breakdown, counters_went_back, versions_changed
from quantserve.errors import QuantserveError

RAW_DIR = "raw"
SOAK_PREFIX = "soak-"
SAME_WINDOW_S = 1e-6  # a saved window_s is the raw window's end less its start, as floats: equal but for rounding
RECOVERED_HEADER = ["step", "requests", "failed", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "mean ms"]
RECOVERED_HEADER += ["avg batch", "queue µs"]  # Triton's, where its counters are whole
MISSING = (  # what only the killed process had
    "the CPU/GPU samples, the check for a server restarted during the window, the served precision and versions"
)


@dataclass
class UnfinishedStep:
    """A step's raw records that no saved result holds, and what they measure."""

    folder: Path  # raw/<model>-<step>
    files: list[str]  # what it holds
    window_s: float | None = None  # None: no window.json (Locust stopped before its window closed)
    requests: int = 0  # succeeded and failed, ending in the window
    failed_requests: int = 0
    unanswered: int = 0  # sent and still waiting when the window ended (in no other count)
    throughput_rps: float = math.nan
    latency: LatencySummary = field(default_factory=lambda: LatencySummary.from_samples([]))
    server: ServerBreakdown | None = None  # Triton's counters over the window, where whole
    server_missing: str = ""  # why not
    stages: list[StageFigures] = field(default_factory=list)
    lengths: LengthFigures | None = None  # by the requests' sent lengths, as a finished step's (None: fewer than 2)

    @property
    def label(self) -> str:
        return f"{self.folder.name} (INCOMPLETE: did not finish)"

    def summary(self) -> str:
        """One line: what the folder holds, what it measured, what is missing, and what to do."""
        head = (
            f"{self.folder}: a load test that did not finish: quantserve loadtest stopped before it wrote a results "
            "file for these records (killed by SIGKILL or out of memory, or stopped by an error it printed)"
        )
        if self.window_s is None:
            return (
                f"{head}; found {', '.join(self.files)} but not both a measured window and its latencies (Locust "
                "stopped before it saved them), so nothing it measured can be reported; rerun quantserve loadtest"
            )
        unanswered = f", {self.unanswered} sent and unanswered at its end" if self.unanswered else ""
        overdue = ", whether the unanswered requests were overdue (they are in no count)" if self.unanswered else ""
        return (
            f"{head}; found Locust's raw records of a {self.window_s:.1f} s measured window (to its planned end or "
            f"to the stop: the records do not say which): {self.requests} requests, {self.failed_requests} failed"
            f"{unanswered}, recomputed into the INCOMPLETE figures; missing: {MISSING}{overdue}{self.server_missing};"
            " not judged; rerun quantserve loadtest for a complete result"
        )


def unfinished_steps(results_dir: Path, runs: list[LoadRun]) -> list[UnfinishedStep]:
    """Each `raw/<step>` folder with files in it that no saved load or soak result holds, read back."""
    saved = _saved_windows(Path(results_dir), runs)
    found = []
    for folder in sorted(p for p in (Path(results_dir) / RAW_DIR).glob("*") if p.is_dir()):
        files = sorted(p.name for p in folder.iterdir())
        if not files or _is_saved(folder, saved):
            continue
        found.append(read_unfinished(folder, files))
    return found


def _saved_windows(results_dir: Path, runs: list[LoadRun]) -> dict[str, list[float | None]]:
    """Step folder name → the windows saved results hold for it (None: a step an interrupt left out unsummarized)."""
    saved: dict[str, list[float | None]] = {}
    for run in runs:
        for result in run.results:
            saved.setdefault(Path(result.locust_csv_prefix).name, []).append(result.window_s)
        if run.interrupted and not run.interrupted.partial_step_saved:
            saved.setdefault(f"{safe_name(run.model)}-{run.interrupted.step}", []).append(None)
    for path in results_dir.glob(f"{SOAK_PREFIX}*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            soak = json.loads(path.read_text())
            saved.setdefault(f"{safe_name(soak['model'])}-u{soak['users']}", []).append(float(soak["duration_s"]))
    return saved


def _is_saved(folder: Path, saved: dict[str, list[float | None]]) -> bool:
    windows = saved.get(folder.name)
    if not windows:
        return False
    if None in windows:
        return True
    try:
        window = recording_files.read_window(folder, gone_at(folder))  # an empty one: the model went in the warm-up
    except (QuantserveError, OSError, ValueError, KeyError):
        return False  # cleared and left without a window by a later run
    return any(abs((window.end - window.start) - w) <= SAME_WINDOW_S for w in windows if w is not None)


def read_unfinished(record_dir: Path, files: list[str]) -> UnfinishedStep:
    """What the records in `record_dir` measured over their window, as a finished step's are summarized."""
    step = UnfinishedStep(record_dir, files)
    try:
        window = recording_files.read_window(record_dir)
    except (QuantserveError, OSError, ValueError, KeyError):
        return step
    if not list(record_dir.glob(recording_files.LATENCY_PATTERN)):  # killed between writing the two
        return step
    rows = recording_files.read_latencies(record_dir, window.start, window.end)
    ok = rows[:, 2] > 0.5
    step.window_s = window.end - window.start
    step.requests, step.failed_requests = len(rows), int((~ok).sum())
    step.unanswered = len(recording_files.read_unanswered(record_dir, window.end))
    step.throughput_rps = float(ok.sum() / step.window_s) if step.window_s > 0 else math.nan
    step.latency = LatencySummary.from_samples(rows[ok, 1])
    step.stages = stage_figures(rows, window.start, window.end, read_stage_starts(record_dir))
    step.lengths = length_figures(rows)  # the same rows as a finished step's (`step_result._summarize`)
    step.server, step.server_missing = _server_figures(record_dir.name, window)
    return step


def _server_figures(step_name: str, window: recording_files.Window) -> tuple[ServerBreakdown | None, str]:
    """Triton's counters over the window for the model the folder is named after, where they are whole."""
    before, after = window.metrics_before, window.metrics_after
    if before is None or after is None:
        return None, ", and Triton's counters (not read at both ends of the window)"
    models = [m for m in after if step_name.startswith(f"{safe_name(m)}-")]
    model = max(models, key=len, default=None)
    if model is None:
        return None, ", and Triton's counters (none of the model the folder is named after)"
    if counters_went_back(before, after, model) or versions_changed(before, after, model):
        return None, ", and Triton's counters (they went back or its versions changed: restarted or reloaded)"
    server = breakdown(before, after, model)
    return (server, "") if server.executions > 0 else (None, ", and Triton's counters (no batch run)")


def writer_pid(results_dir: Path) -> int | None:
    """The pid of another process holding `results_dir` for a load run (`recording_files.results_folder_held`):
    its records are still being written, not left by a killed run. None where none holds it."""
    path = Path(results_dir) / recording_files.LOCK_FILE
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        return int(holder) if holder.isdigit() and int(holder) != os.getpid() else None
    finally:
        os.close(fd)
    return None


def recovered_rows(steps: list[UnfinishedStep]) -> list[list[str]]:
    """The load table's cells for each unfinished step with a window (its Triton cells "–" where not whole)."""
    rows = []
    for s in steps:
        if s.window_s is None:
            continue
        server, latency = s.server, s.latency
        times = (latency.p50_ms, latency.p90_ms, latency.p95_ms, latency.p99_ms, latency.mean_ms)
        batch = [_cell(server.avg_batch_size, 2), _cell(server.avg_queue_us, 0)] if server else ["–", "–"]
        cells = [_cell(s.throughput_rps, 1), *(_cell(ms, 2) for ms in times), *batch]
        rows.append([s.label, str(s.requests), str(s.failed_requests), *cells])
    return rows


def recovered_length_rows(steps: list[UnfinishedStep]) -> list[list[str]]:
    """The "Per request length" table's rows of each unfinished step whose requests went at several lengths, its
    step cell marked as recovered and saying how many answered requests the rows rest on (a killed run's few)."""
    return [[_length_label(s), *part.cells()] for s in steps if s.lengths for part in s.lengths.ranges]


def recovered_length_notes(steps: list[UnfinishedStep]) -> list[str]:
    """The note on short requests waiting as long as long ones (`LengthFigures.batched_note`), as a finished step's."""
    notes = [s.lengths.batched_note(_length_label(s)) for s in steps if s.lengths]
    return [note for note in notes if note]


def _length_label(step: UnfinishedStep) -> str:
    answered = sum(part.requests for part in step.lengths.ranges) if step.lengths else 0
    return f"{step.folder.name} (INCOMPLETE, recovered from {answered} answered requests)"


def _cell(value: float, digits: int) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"
