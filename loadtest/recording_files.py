"""Reading back what the Locust processes recorded: the measured window, exact latencies, failures.

Kept apart from `loadtest.recording` because that module imports locust (which monkey-patches
the interpreter) and this one is read by the harness in the ordinary process.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError
from serving.model_config import is_version_name

WINDOW_FILE = "window.json"
LOCK_FILE = ".loadtest.lock"  # in --out: held by the load run writing there
LATENCY_PATTERN = "latencies-*.npy"
UNANSWERED_PREFIX = "unanswered-"
UNSENT_PREFIX = "unsent-"
# A request still unanswered at the window's end is overdue once it has waited longer than this and than twice the
# slowest answered request took: an ordinary request cut by the stop has waited less than its answer would take (the
# factor leaves room for a slow model's spread). Overdue counts as failed only with evidence the server stopped.
UNANSWERED_FLOOR_MS = 1000.0
UNANSWERED_SLOWER = 2.0
PLANNED_END_SLACK_S = 0.01  # a window ending this close before its planned end reached it (`Window.ran_to_plan`)
UNSENT_FLOOR_MS = 250.0  # an arrival due this long before the stop and not sent was backlog, not on its way


@dataclass
class Window:
    """Wall-clock bounds of the measured window and Triton's counters scraped at each end."""

    start: float
    end: float  # the planned end, or the last request answered in the run after it (`measured_end`)
    metrics_before: dict[str, Any] | None
    metrics_after: dict[str, Any] | None
    metrics_errors: tuple[str, ...] = ()  # why a scrape at either end got nothing (the endpoint did not answer)
    # --window-time after the start (where an open loop's schedule stops offering), or where a shape's stages end
    planned_end: float | None = None
    # seconds the scrapes at both ends took to read, together (None: a record from before session 48): the client's
    # answers meanwhile are counted by Triton alone (`triton_metrics.counts_disagree`)
    scrape_s: float | None = None

    @property
    def ran_to_plan(self) -> bool:
        """Whether the window reached its planned end before Locust's stop: an interrupt after it (Locust shutting
        down, writing its records) cut nothing of it. A window with no planned end counts as cut by its stop. Within
        `PLANNED_END_SLACK_S` of it counts as reached: gevent's timer on its own loop clock ended a --workers master's
        window 0.05–0.8 ms before the wall-clock planned end, so the same interrupt after it was saved "partial" or
        "complete" by chance (session 43)."""
        return self.planned_end is not None and self.end >= self.planned_end - PLANNED_END_SLACK_S


@contextlib.contextmanager
def results_folder_held(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir` for one load run (fcntl.flock on a hidden lock file, released even if the process is killed):
    two loadtests into one --out each read both runs' records and printed their sum as their own figures. A folder
    made here that holds nothing but the lock at the end (a run refused on bad input) is removed again."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise QuantserveError(
            f"{out_dir}: another load run (pid {holder}) is writing its results here; give this one another --out"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
        if created and {entry.name for entry in out_dir.iterdir()} == {LOCK_FILE}:
            (out_dir / LOCK_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out_dir.rmdir()


def refuse_replacing(out_dir: Path, runs: list[tuple[str, str]]) -> None:
    """Before any load, one line where this run would replace a record in `out_dir`: a `runs` file (name, file) an
    earlier run of that name saved there, or one name twice (`--model m,m`). As two runs at once into one --out are
    refused (`results_folder_held`), a second run of one model there is: it replaced the first's load-NAME.json in
    silence, while its Locust CSVs and raw records took the same step folders."""
    files: set[str] = set()
    for name, file in runs:
        if file in files:
            raise QuantserveError(f"--model names '{name}' twice: its second run would replace the first's {file}")
        files.add(file)
        if (out_dir / file).exists():
            raise QuantserveError(
                f"{out_dir / file}: an earlier run of '{name}' is saved here; give this run another --out, or "
                "remove that file to measure it again in its place"
            )


def clear(record_dir: Path) -> None:
    """Remove an earlier step's records so they cannot be mixed into this one."""
    shutil.rmtree(record_dir, ignore_errors=True)
    _loaded.clear()
    record_dir.mkdir(parents=True, exist_ok=True)


def read_window(record_dir: Path, gone_at: float | None = None) -> Window:
    """The window the Locust master recorded; without one, where the model stopped being served (`gone_at`: the run
    ended in the warm-up, `loadtest.model_gone`), an empty window then, else a one-line error."""
    path = record_dir / WINDOW_FILE
    if not path.is_file() and gone_at is not None:
        return Window(gone_at, gone_at, None, None)
    if not path.is_file():
        raise QuantserveError(f"locust recorded no measured window (logs: {record_dir}); did any user start?")
    try:
        data = json.loads(path.read_text())
        start, stopped, planned = float(data["start"]), float(data["end"]), data.get("planned_end")
        planned = None if planned is None else float(planned)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # cut short by a full disk, a file size limit
        raise QuantserveError(f"{path}: not a readable load record ({type(exc).__name__}: {exc})") from exc
    end = measured_end(start, stopped, planned, _answer_ends(record_dir))
    errors = tuple(data.get("metrics_errors", ()))
    scrape_s = data.get("scrape_s")
    scraped = float(sum(scrape_s)) if isinstance(scrape_s, list) else None
    return Window(start, end, data.get("metrics_before"), data.get("metrics_after"), errors, planned, scraped)


def measured_end(start: float, stopped: float, planned_end: float | None, answered: np.ndarray | None) -> float:
    """Where the window ends: its planned end, or the last request `answered` (end wall times) before Locust's stop
    (`stopped`, where the records end) where one came after it; the stop where it came first (an interrupt, the model
    gone) or nothing was planned (a record from before `planned_end` was kept, or a shape's). Not the stop
    itself: Locust's local stop reads the call stack before it tells the window (`Runner.stop`), its hub held,
    nothing sent: the window ran 0.12-0.50 s past the last request, and every rate was divided by that idle tail too
    (100 req/s offered and answered read 94.2 req/s). Every request counted (answered in [start, stopped]) still
    ends within it, so its rates divide them by the span they were sent and answered in."""
    if planned_end is None or stopped <= planned_end or answered is None:
        return stopped
    counted = answered[(answered >= start) & (answered <= stopped)]
    return max(planned_end, float(counted.max(initial=planned_end)))


def _answer_ends(record_dir: Path) -> np.ndarray | None:
    """The end wall time of every request the Locust processes recorded; None where a record cannot be read (the
    window is then the stop, and `read_latencies` names the file)."""
    try:
        return _latency_records(record_dir)[:, 0]
    except QuantserveError:
        return None


SAMPLE_COLUMNS = 10
DEADLINE_COLUMN = 7  # 1.0: the request failed by the client's own deadline (--request-timeout), not an answer
# ... 2.0: by gRPC's DEADLINE_EXCEEDED before 0.99 of that deadline had passed (`grpc_user._past_deadline`)
EARLY_DEADLINE = 2.0
# the model version that answered the request, as Triton's response names it (0: a failure, or a record from before
# it was kept): a stage answered by two versions was a swap mid-stage, not only more users (`stage_figures`)
VERSION_COLUMN = 8
# the request's length as sent: its padded inputs' axis-1 width once cut to its real length (`request_data.
# trim_padding`); 0 where the run sends them uncut (or a record from before it was kept): `loadtest.length_figures`
LENGTH_COLUMN = 9


def answering_version(version: str) -> float:
    """The version a Triton response names ("2") as a sample's `VERSION_COLUMN` value; 0.0 where it names none."""
    return float(version) if is_version_name(version) else 0.0


def read_latencies(record_dir: Path, start: float, end: float) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok, send lag ms, generator lag ms, samples in the request, requests in
    flight at its arrival, failed by the client's deadline, answering version, sent length) from every Locust
    process, for requests ending in the window; columns a process did not record (an older one) are 0."""
    samples = _latency_records(record_dir)
    return samples[(samples[:, 0] >= start) & (samples[:, 0] <= end)]


_loaded: list[tuple[tuple[tuple[str, int, int, int], ...], np.ndarray]] = []  # the latest records read, by their files


def _latency_records(record_dir: Path) -> np.ndarray:
    """Every Locust process's latency record in `record_dir`, widened (`_widened`) and joined; read once while its
    files stay as they were (name, inode, size, mtime; `clear` forgets them), though a step reads them for its
    window's end (`read_window`), its rows (`read_latencies`) and its arrivals (`read_arrivals`)."""
    paths = sorted(record_dir.glob(LATENCY_PATTERN))
    key = tuple((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns) for path in paths for stat in [path.stat()])
    if _loaded and _loaded[0][0] == key:
        return _loaded[0][1]
    parts = [_widened(_read_record(path)) for path in paths]
    rows = np.concatenate(parts) if parts else np.zeros((0, SAMPLE_COLUMNS))
    rows.flags.writeable = False  # shared by every reader: none may change another's
    _loaded[:] = [(key, rows)]
    return rows


def _read_record(path: Path) -> np.ndarray:
    """One Locust process's raw record (`loadtest.recording`: a 2-D float array), or one line naming the file: one
    cut short (a full disk, a file size limit) failed as a 38-line traceback ("cannot reshape array of size 5104
    into shape (1498,8)")."""
    try:
        rows = np.load(path)
        return rows.reshape(len(rows), -1)
    except (OSError, ValueError, EOFError, TypeError) as exc:  # TypeError: a 0-d array has no rows
        raise QuantserveError(f"{path}: not a readable load record ({type(exc).__name__}: {exc})") from exc


def _widened(rows: np.ndarray) -> np.ndarray:
    """`rows` with zero columns added up to SAMPLE_COLUMNS, or cut to them: a record a newer quantserve wrote with
    more columns (mid-upgrade) failed the concatenation with a traceback ("size 10 … size 9")."""
    missing = SAMPLE_COLUMNS - rows.shape[1]
    return np.pad(rows, ((0, 0), (0, missing))) if missing > 0 else rows[:, :SAMPLE_COLUMNS]


def read_unanswered(record_dir: Path, end: float) -> np.ndarray:
    """Requests sent before the window's `end` and still unanswered then (one sent during the ramp-up too), from
    every Locust process: rows of (ms waited by the end of the window, samples in the request)."""
    stopped, waited, samples, _ = _unanswered_records(record_dir).T
    sent = stopped - waited / 1000.0
    keep = sent <= end
    return np.column_stack([(end - sent[keep]) * 1000.0, samples[keep]])


def _unanswered_records(record_dir: Path) -> np.ndarray:
    """Every process's unanswered requests as recorded (`recording.record_unanswered`): (stop wall time, ms waited
    since sent, samples, arrival wall time); a file from before arrivals were recorded arrived when sent."""
    rows = [_read_record(path) for path in sorted(record_dir.glob(f"{UNANSWERED_PREFIX}*.npy"))]
    rows = [part if part.shape[1] >= 4 else np.column_stack([part, part[:, 0] - part[:, 1] / 1000.0]) for part in rows]
    return np.concatenate(rows)[:, :4] if rows else np.zeros((0, 4))


def _unsent_arrivals(record_dir: Path) -> np.ndarray:
    """The arrival wall times of every process's open-loop arrivals never sent (`recording.record_unsent`)."""
    parts = [_read_record(path).reshape(-1, 2) for path in sorted(record_dir.glob(f"{UNSENT_PREFIX}*.npy"))]
    return np.concatenate(parts)[:, 0] if parts else np.zeros(0)


def read_unsent(record_dir: Path, end: float, start: float = -np.inf) -> int:
    """Open-loop arrivals of the window (due from its `start`) due UNSENT_FLOOR_MS or more before its `end` that
    were still waiting in the client when the run stopped, never sent (a server slower than the offered rate), from
    every Locust process. A younger one may only be on its way to a free slot as the run stops: a healthy run has
    none older; it is offered, and on its way at the end (`LoadResult.cut_at_end`) as far as free in-flight slots
    could take it (`step_result._count_offered`; the rest is counted unsent there)."""
    arrivals = _unsent_arrivals(record_dir)
    return int(((arrivals >= start) & (arrivals <= end - UNSENT_FLOOR_MS / 1000.0)).sum())


def read_arrivals(record_dir: Path) -> np.ndarray:
    """Open loop: the arrival wall time of every request the Locust processes were scheduled to send, however it
    ended: answered or failed (its end less its latency, which counts from the arrival), unanswered at the stop, or
    never sent; in any window or none (`offered_in_window` counts a window's)."""
    ended = _latency_records(record_dir)
    answered = ended[:, 0] - ended[:, 1] / 1000.0
    return np.concatenate([answered, _unanswered_records(record_dir)[:, 3], _unsent_arrivals(record_dir)])


def offered_in_window(arrivals: np.ndarray, start: float, end: float) -> int:
    """How many of the `arrivals` (wall times) the window offered: those scheduled from its `start` to its `end`,
    whether answered in it, after it, still in flight or never sent; not one scheduled before it opened, though
    answered in it (a schedule started before the window opened: runs before `loadtest.recording.schedule_start`)."""
    return int(((arrivals >= start) & (arrivals <= end)).sum())


def overdue(samples: np.ndarray, unanswered: np.ndarray) -> np.ndarray:
    """The `unanswered` rows (`read_unanswered`) that had waited longer than UNANSWERED_FLOOR_MS and than
    UNANSWERED_SLOWER times the slowest answered request in `samples` took."""
    ok = _answered(samples)
    slowest = float(samples[ok, 1].max()) if ok.any() else 0.0
    return unanswered[unanswered[:, 0] > max(UNANSWERED_SLOWER * slowest, UNANSWERED_FLOOR_MS)]


def answered_any(samples: np.ndarray) -> bool:
    """Whether the server answered any request in `samples`."""
    return bool(_answered(samples).any())


def _answered(samples: np.ndarray) -> np.ndarray:
    return samples[:, 2] > 0.5 if samples.size else np.zeros(0, dtype=bool)


def unanswered_rows(
    samples: np.ndarray, unanswered: np.ndarray, end: float, server_answering: bool = False
) -> np.ndarray:
    """Failed-request rows, ending at `end`, for the `overdue` requests when the server stopped answering (Locust
    drops the requests in flight when it stops): it answered earlier requests and not these, or it did not answer
    at the end (`server_answering` False: the end-of-run metrics scrape or a liveness probe got nothing)."""
    waited = overdue(samples, unanswered)
    if server_answering and not answered_any(samples):
        waited = waited[:0]
    rows = np.zeros((len(waited), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 5] = end, waited[:, 0], waited[:, 1]
    return rows


def still_in_flight(samples: np.ndarray, unanswered: np.ndarray, server_answering: bool) -> np.ndarray:
    """Ms waited by the `overdue` requests that are not failures: nothing answered yet and the server still
    answering at the end, so the model takes longer than the window (`unanswered_rows` counts the others). Not
    where requests failed in the window: the server answered them, with errors, and these were on their way to the
    same (a killed backend's requests failed after 2.4 s each; two waiting 1.96 s were blamed on a slow model)."""
    waited = overdue(samples, unanswered)
    failed = bool(len(samples)) and not bool(_answered(samples).all())
    if server_answering and not answered_any(samples) and not failed:
        return waited[:, 0]
    return np.zeros(0)


def read_failures(csv_prefix: Path) -> dict[str, int]:
    """Locust's failure table: `{error message: occurrences}`."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(handle)}
