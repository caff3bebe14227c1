"""Recorded arrivals, replayed open loop: real traffic's bursts and lulls instead of an even or Poisson rate.

Two file forms are read:
- perf_analyzer's `--request-intervals` file: one gap per line, in microseconds, between consecutive
  requests (lines starting with `#` and blank lines skipped), so a file made for perf_analyzer replays
  here unchanged;
- a CSV with a header and an arrival-time column (`timestamp`, `time`, `arrival_time` or `arrival`,
  any case, optionally with a unit: `timestamp_ms`, `time_us`; seconds without one, unless the numbers are
  too large to be Unix seconds — from 1e11 they are epoch milliseconds, 1e14 microseconds, 1e17 nanoseconds,
  as JavaScript's Date.now() and tracing spans write them): numbers (any origin), or date-times such as
  `2023-11-16 18:15:46.6805900` (the form of Azure's public inference traces), with a zone or not
  (`2024-05-01T12:00:00.123Z`, `…+02:00`: moved to UTC). Rows need not be sorted (the plan says where they were
  not, naming a stamp far outside the rows around it); other columns are ignored (one whose name is a near miss of
  a name read here, `batch_sise`, is refused naming it), and a quoted cell of one may span lines (a prompt).
  Unit-less stamps read as seconds that look like milliseconds (1000 or more arrivals a mean 1 s or more apart, or
  whole numbers a median 10 s or more apart) carry a warning naming the `_ms` suffix and `--trace-speed 1000`
  (`ArrivalTrace.unit_note`, loadtest.trace_plan).
- the same CSV with a count per interval instead of a row per request, as request logs are kept once
  aggregated (a dashboard's requests per second or per minute): a `count`, `requests` or
  `invocations` column (arrivals in the interval from that row's time to the next row's), or a `rate`,
  `rps` or `qps` column (arrivals per second over it). The last row's interval is the median of the
  others. Within an interval the arrivals fall as a Poisson process would given their number
  (uniformly at random, seeded, so every replay of the file is the same); a fractional expected count
  is carried over to the next interval, so the total is the count the file holds.

- JSON lines (`.jsonl`, or any file whose first line is a JSON object): one object a line, its keys read as
  the CSV's columns are (Mooncake's and similar LLM-serving traces; their `timestamp` is in milliseconds,
  so replay them with `--trace-speed 1000`, or name it `timestamp_ms`);
- Azure Functions' per-minute form: a CSV whose columns `1`, `2`, … `N` are counts per minute (a row per
  function, other columns such as HashFunction ignored); the minutes are summed over the rows and replayed
  as a count per 60 s interval, as above.

A row-per-request CSV may also say how many samples each request carries (real clients send batches of
different sizes): a `batch_size`, `batch` or `samples` column of integers >= 1. Each request is then
built of that many rows of the data file (the run's `--request-batch` is used where there is none). Beside a count
or rate, it is the size of every request counted in that row's interval.

`scale` (`--trace-scale`) replays a trace at a share of its rate with its shape kept, as a production trace
must be to fit one test server: a count per interval is multiplied by it before the arrivals are placed
(any positive scale; Azure's per-minute counts sum to far more than one machine takes), a row-per-request
trace is thinned, each arrival kept with that probability (seeded; scale ≤ 1 — `speed` makes one faster).

The trace is replayed from its first arrival and loops when it ends (as perf_analyzer loops over its
intervals) until the measured window closes; `speed` compresses time (2: twice the rate, the same
shape). Arrivals are dealt in turn to the load processes (`--workers`): process i of n fires arrivals
i, i + n, i + 2n … of the looped trace, so together they fire every arrival once, at its time.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.timeline import most_arrivals_within
from loadtest.trace_columns import (
    TraceRows,
    as_seconds,
    as_sizes,
    is_number,
    millisecond_stamps_note,
    order_note,
    other_delimiter,
    read_as_plain_seconds,
    refuse_near_misses,
)
from loadtest.trace_counts import (
    COUNT_COLUMNS,
    COUNT_SEED,
    MAX_ARRIVALS,
    RATE_COLUMNS,
    from_column_counts,
    from_minute_counts,
    minute_columns,
)
from quantserve.errors import QuantserveError

TIME_COLUMNS = ("timestamp", "time", "arrival_time", "arrival")
SIZE_COLUMNS = ("batch_size", "batch", "samples")  # samples in the row's request
TIME_UNITS = {"": 1.0, "_s": 1.0, "_ms": 1e-3, "_us": 1e-6, "_ns": 1e-9}  # a column name's suffix
# every column name the CSV reader reads: an unread column's name close to one is refused as a typo (trace_columns)
KNOWN_COLUMNS = [n + u for n in TIME_COLUMNS for u in TIME_UNITS] + [*COUNT_COLUMNS, *RATE_COLUMNS, *SIZE_COLUMNS]
# a window offering a rate this far (a share) from the pass's mean is labelled with its own: 10 s of a 30 s diurnal
# pass offered 184 req/s, its label said "283.1 req/s mean" and the table read as the server falling 35 % short.
# Wide enough for a window's end past the schedule's (10.09 s measured of 10 s played) on a short run.
MEAN_TOLERANCE = 0.1


@dataclass(frozen=True)
class ArrivalTrace:
    """Arrival times of one pass (seconds from the pass's start — its first arrival, or a counted trace's first
    interval — ascending) and the length of a pass."""

    source: str
    offsets_s: np.ndarray
    period_s: float  # one pass; the next pass starts this long after the first arrival
    sizes: np.ndarray | None = None  # samples in each arrival's request (None: the run's --request-batch)
    unit_note: str | None = None  # a warning where unit-less stamps read as seconds look like ms (trace_columns)
    order_note: str | None = None  # where the rows were not in time order: said, as they are replayed sorted
    idle_s: float = 0.0  # seconds without arrivals added to the recorded pass (`padded_to`), in `period_s`

    def padded_to(self, seconds: float) -> ArrivalTrace:
        """This trace with its pass made `seconds` long where it is shorter: the time after the recorded pass holds
        no arrival. A run of one pass in whole seconds (loadtest's default) plays the pass once and stops: rounded up,
        a 5.0017 s pass of a 3000-request burst at its start replayed the burst twice in its 6 s (issue 11)."""
        if seconds <= self.period_s:
            return self
        return replace(self, period_s=float(seconds), idle_s=self.idle_s + float(seconds) - self.period_s)

    @property
    def recorded_period_s(self) -> float:
        """The pass as the trace has it (its span and one mean gap), without the idle time `padded_to` added."""
        return self.period_s - self.idle_s

    @property
    def requests(self) -> int:
        return len(self.offsets_s)

    @property
    def mean_rate_rps(self) -> float:
        return self.requests / self.period_s

    def arrivals_within(self, seconds: float) -> int:
        """The arrivals of the looped trace in its first `seconds`: what a window that long offers."""
        whole = math.floor(seconds / self.period_s)
        rest = seconds - whole * self.period_s
        return int(whole * self.requests + np.searchsorted(self.offsets_s, rest, side="left"))

    def peak_rate_rps(self, window_s: float = 1.0) -> float:
        """The most arrivals in any `window_s` of the looped trace, per second (the burst a server must take)."""
        # a window longer than a pass holds whole passes and then a remainder; the remainder's busiest stretch may
        # wrap around the pass's end, hence two passes (a 0.01 s pass of 2 arrivals: 200/s, not "4/s")
        whole = math.floor(window_s / self.period_s)
        rest = window_s - whole * self.period_s
        # (a window from the second pass holds no more than the same window from the first, wrapped)
        two_passes = np.concatenate([self.offsets_s, self.offsets_s + self.period_s])
        return float((whole * self.requests + most_arrivals_within(two_passes, rest)) / window_s)

    def gap_cv(self) -> float:
        """Coefficient of variation of the gaps between arrivals: 0 even, 1 Poisson, above 1 bursty."""
        # the last wraps around the recorded pass: the idle time `padded_to` adds is no gap of the trace's (a Poisson
        # trace's 0.957 s pass padded to 1 s read 1.625 with it, 0.991 without)
        gaps = np.diff(np.append(self.offsets_s, self.offsets_s[0] + self.recorded_period_s))
        return float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else 0.0

    def summary(self, speed: float, scale: float = 1.0) -> dict[str, Any]:
        """How the trace is recorded with each result: the file, its size, and its rate as replayed."""
        record = {
            "file": self.source,
            "speed": speed,
            "scale": scale,
            "requests_per_pass": self.requests,
            "pass_s": round(self.period_s, 6),
            **({"idle_after_pass_s": round(self.idle_s, 6)} if self.idle_s else {}),
            "mean_rate_rps": round(self.mean_rate_rps, 3),
            "peak_rate_rps_1s": round(self.peak_rate_rps(), 3),
            "gap_cv": round(self.gap_cv(), 3),
        }
        if self.sizes is not None:
            record.update(
                mean_request_samples=round(float(self.sizes.mean()), 3),
                max_request_samples=int(self.sizes.max()),
                request_sizes=len(np.unique(self.sizes)),
            )
        return record

    def schedule(self, share: int = 0, shares: int = 1) -> Iterator[float]:
        """Seconds from the replay's start of arrivals share, share + shares, … of the looped trace."""
        for offset, _ in self.arrivals(share, shares):
            yield offset

    def arrivals(self, share: int = 0, shares: int = 1) -> Iterator[tuple[float, int]]:
        """`schedule`'s arrivals with each one's request size (0: the run's --request-batch)."""
        for k in itertools.count(share % max(1, shares), max(1, shares)):
            passes, position = divmod(k, self.requests)
            size = 0 if self.sizes is None else int(self.sizes[position])
            yield passes * self.period_s + float(self.offsets_s[position]), size


def read_trace(path: Path | str, speed: float = 1.0, scale: float = 1.0) -> ArrivalTrace:
    """The trace in `path` (module docstring), its time divided by `speed`, its arrivals scaled by `scale`; every
    problem is one line naming it."""
    path = Path(path)
    if not (speed > 0 and math.isfinite(speed)):
        raise QuantserveError(f"--trace-speed must be a finite number above 0, got {speed:g}")
    if not (scale > 0 and math.isfinite(scale)):
        raise QuantserveError(f"--trace-scale must be a positive number, got {scale:g}")
    if not path.is_file():
        raise QuantserveError(f"--trace {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuantserveError(f"--trace {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    lines = [line.strip() for line in text.splitlines()]
    first = next((line for line in lines if line and not line.startswith("#")), "")
    if not first:
        raise QuantserveError(f"--trace {path}: no arrivals in it")
    sizes, counted, plain, order_note = None, False, "", None
    if path.suffix.lower() in (".jsonl", ".ndjson") or first.startswith("{"):
        lines = _json_lines_as_csv(path, lines)  # a header line before the file's first
        offsets, period, sizes, counted, plain, order_note = _from_timestamps(path, lines, scale, first_line=0)
    elif path.suffix.lower() == ".csv" or "," in first or _is_header(first):
        offsets, period, sizes, counted, plain, order_note = _from_timestamps(path, lines, scale)
    else:
        offsets, period = _from_intervals(path, lines)
    if not counted and scale != 1.0:
        offsets, sizes = _thinned(path, offsets, sizes, scale)
    if len(offsets) > MAX_ARRIVALS:
        raise QuantserveError(
            f"--trace {path}: {len(offsets)} arrivals, more than {MAX_ARRIVALS} (cut it, or thin it with --trace-scale)"
        )
    replayed = period / speed
    if not (replayed > 0 and math.isfinite(replayed) and math.isfinite(len(offsets) / replayed)):
        # it ran the whole load, then divided by zero for the mean rate and lost the results (--trace-speed inf)
        raise QuantserveError(
            f"--trace {path}: a pass of {period:g} s at --trace-speed {speed:g} lasts {replayed:g} s; a replay needs "
            "a finite pass longer than zero"
        )
    note = millisecond_stamps_note(path, plain, offsets, speed, replayed) if plain and not counted else None
    return ArrivalTrace(str(path), offsets / speed, replayed, sizes, note, order_note)


def _thinned(
    path: Path, offsets: np.ndarray, sizes: np.ndarray | None, scale: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """A row-per-request trace at `scale` (< 1) of its rate, its shape kept: each arrival kept with that
    probability, seeded (every process of a run, and every run, keeps the same ones), as thinning a Poisson
    process leaves a Poisson process."""
    if scale > 1:
        raise QuantserveError(
            f"--trace {path}: --trace-scale {scale:g} above 1 needs a count per interval to multiply; a trace of one "
            "row per request replays faster with --trace-speed"
        )
    keep = np.random.default_rng(COUNT_SEED).random(len(offsets)) < scale
    if keep.sum() < 2:
        raise QuantserveError(
            f"--trace {path}: --trace-scale {scale:g} keeps {int(keep.sum())} of {len(offsets)} arrivals; a replay "
            "needs at least 2"
        )
    return offsets[keep], None if sizes is None else sizes[keep]


def _is_header(line: str) -> bool:
    first = line.lower().split(",")[0].strip()  # another delimiter than a comma: a CSV's, refused naming it
    named = any(first == name + unit for name in TIME_COLUMNS for unit in TIME_UNITS)
    return named or other_delimiter(line) is not None


def _from_intervals(path: Path, lines: list[str]) -> tuple[np.ndarray, float]:
    """perf_analyzer's form: the gap before each request, in µs; arrival k is at the sum of the gaps before it."""
    try:
        gaps = np.array([line for line in lines if line and not line.startswith("#")], dtype=np.float64) * 1e-6
    except ValueError:
        gaps = np.full(1, np.nan)
    if not np.all(np.isfinite(gaps) & (gaps >= 0)):
        _refuse_first_bad_gap(path, lines)
    period = float(np.sum(gaps))
    if period <= 0:
        raise QuantserveError(f"--trace {path}: the gaps add up to 0 µs; a replay needs time between requests")
    return np.concatenate([[0.0], np.cumsum(gaps)[:-1]]), period


def _refuse_first_bad_gap(path: Path, lines: list[str]) -> None:
    """One line naming the first line that is no gap in microseconds >= 0."""
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        if not is_number(line):
            raise QuantserveError(
                f"--trace {path} line {number}: '{line[:40]}' is not a gap in microseconds "
                f"(a CSV of timestamps needs a header with one of: {', '.join(TIME_COLUMNS)})"
            )
        if not (math.isfinite(float(line)) and float(line) >= 0):
            raise QuantserveError(f"--trace {path} line {number}: gap {line} µs is not a number >= 0")


def _json_lines_as_csv(path: Path, lines: list[str]) -> list[str]:
    """JSON lines as CSV lines: a header of the first object's keys, then each object's values, one for one (read
    from line 0, every later error names the file's own line)."""
    out: list[str] = []
    keys: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            out.append(line)
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise QuantserveError(f"--trace {path} line {number}: '{line[:40]}' is not a JSON object")
        if keys is None:
            keys = [str(key) for key in record]
            out.insert(0, _csv_line(keys))
        out.append(_csv_line(["" if record.get(key) is None else str(record.get(key)) for key in keys]))
    return out


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def _from_timestamps(
    path: Path, lines: list[str], scale: float = 1.0, first_line: int = 1
) -> tuple[np.ndarray, float, np.ndarray | None, bool, str, str | None]:
    """A CSV's arrival-time column; a pass lasts the span plus one mean gap, so looping keeps the mean rate. Also
    whether the rows were counts per interval (scaled here by `scale`, before any arrival is placed), the time
    column's name where its unit-less numbers were read as seconds (else ""), and a note where the rows were out of
    time order (`order_note`). `first_line`: the number of `lines[0]` in the file."""
    rows = TraceRows.of(path, lines, first_line)
    lowered = [name.lower() for name in rows.header]
    found = [(lowered.index(n + u), u) for n in TIME_COLUMNS for u in TIME_UNITS if n + u in lowered]
    if not found and minute_columns(rows.header):
        offsets, period = from_minute_counts(rows, scale)
        return offsets, period, None, True, "", None
    if not found:
        header = rows.header
        shown = ", ".join(header[:12]) + (f", … ({len(header)} columns)" if len(header) > 12 else "")
        raise QuantserveError(
            f"--trace {path}: no arrival-time column (looked for {', '.join(TIME_COLUMNS)}; found: {shown})"
        )
    column, unit = found[0]
    cells = rows.cells(column)
    seconds = as_seconds(rows, rows.header[column], cells, TIME_UNITS[unit] if unit else None)
    plain = rows.header[column] if not unit and read_as_plain_seconds(cells) else ""
    sized = [i for i, name in enumerate(lowered) if name in SIZE_COLUMNS]
    sizes = as_sizes(rows, rows.header[sized[0]], rows.cells(sized[0])) if sized else None
    counted = [i for i, name in enumerate(lowered) if name in COUNT_COLUMNS + RATE_COLUMNS]
    refuse_near_misses(rows, {column, *sized[:1], *counted[:1]}, KNOWN_COLUMNS)
    if counted:
        offsets, period, source = from_column_counts(rows, counted[0], seconds, scale)
        return offsets, period, None if sizes is None else sizes[source], True, "", None
    if len(seconds) < 2:
        raise QuantserveError(f"--trace {path}: {len(seconds)} arrival(s); a replay needs at least 2 to have a rate")
    order = np.argsort(seconds, kind="stable")
    offsets = seconds[order] - seconds[order][0]
    span = float(offsets[-1])
    if span <= 0:
        raise QuantserveError(f"--trace {path}: every arrival has the same time; a replay needs time between them")
    period = span * len(offsets) / (len(offsets) - 1)
    return offsets, period, None if sizes is None else sizes[order], False, plain, order_note(rows, seconds, cells)
