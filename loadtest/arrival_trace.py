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
  (`2024-05-01T12:00:00.123Z`, `…+02:00`: moved to UTC). Rows need not be sorted; other columns are ignored.
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
built of that many rows of the data file (the run's `--request-batch` is used where there is none).

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
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

TIME_COLUMNS = ("timestamp", "time", "arrival_time", "arrival")
COUNT_COLUMNS = ("count", "requests", "invocations")  # arrivals in the row's interval
RATE_COLUMNS = ("rate", "rps", "qps")  # arrivals per second over the row's interval
SIZE_COLUMNS = ("batch_size", "batch", "samples")  # samples in the row's request
MAX_REQUEST_SAMPLES = 4096  # a request's samples, as a sanity bound (Triton's max_batch_size is far below)
COUNT_SEED = 0  # where in its interval each counted arrival falls: fixed, so a replay is repeatable
TIME_UNITS = {"": 1.0, "_s": 1.0, "_ms": 1e-3, "_us": 1e-6, "_ns": 1e-9}  # a column name's suffix
# a date-time, its zone (Z or ±HH:MM) optional: without one, every row is taken in the same (unknown) zone
DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)(Z|[+-]\d{2}:?\d{2})?")
# unit-less numbers this large are no Unix time in seconds (1e11 s is the year 5138): epoch ms, µs or ns
EPOCH_UNITS = ((1e17, 1e-9), (1e14, 1e-6), (1e11, 1e-3))
MAX_ARRIVALS = 10_000_000  # a trace's arrivals held in memory (80 MB of float64)


@dataclass(frozen=True)
class ArrivalTrace:
    """Arrival times of one pass (seconds from the pass's start — its first arrival, or a counted trace's first
    interval — ascending) and the length of a pass."""

    source: str
    offsets_s: np.ndarray
    period_s: float  # one pass; the next pass starts this long after the first arrival
    sizes: np.ndarray | None = None  # samples in each arrival's request (None: the run's --request-batch)

    @property
    def requests(self) -> int:
        return len(self.offsets_s)

    @property
    def mean_rate_rps(self) -> float:
        return self.requests / self.period_s

    def peak_rate_rps(self, window_s: float = 1.0) -> float:
        """The most arrivals in any `window_s` of the looped trace, per second (the burst a server must take)."""
        # a window longer than a pass holds whole passes and then a remainder; the remainder's busiest stretch may
        # wrap around the pass's end, hence two passes (a 0.01 s pass of 2 arrivals: 200/s, not "4/s")
        whole = math.floor(window_s / self.period_s)
        rest = window_s - whole * self.period_s
        two_passes = np.concatenate([self.offsets_s, self.offsets_s + self.period_s])
        ends = np.searchsorted(two_passes, self.offsets_s + rest, side="left")
        return float((whole * self.requests + (ends - np.arange(self.requests)).max()) / window_s)

    def gap_cv(self) -> float:
        """Coefficient of variation of the gaps between arrivals: 0 even, 1 Poisson, above 1 bursty."""
        gaps = np.diff(np.append(self.offsets_s, self.offsets_s[0] + self.period_s))  # the last wraps around
        return float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else 0.0

    def summary(self, speed: float, scale: float = 1.0) -> dict[str, Any]:
        """How the trace is recorded with each result: the file, its size, and its rate as replayed."""
        record = {
            "file": self.source,
            "speed": speed,
            "scale": scale,
            "requests_per_pass": self.requests,
            "pass_s": round(self.period_s, 6),
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
    if not speed > 0:
        raise QuantserveError(f"--trace-speed must be positive, got {speed:g}")
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
    sizes, counted = None, False
    if path.suffix.lower() in (".jsonl", ".ndjson") or first.startswith("{"):
        lines = _json_lines_as_csv(path, lines)
        offsets, period, sizes, counted = _from_timestamps(path, lines, scale)
    elif path.suffix.lower() == ".csv" or "," in first or _is_header(first):
        offsets, period, sizes, counted = _from_timestamps(path, lines, scale)
    else:
        offsets, period = _from_intervals(path, lines)
    if not counted and scale != 1.0:
        offsets, sizes = _thinned(path, offsets, sizes, scale)
    if len(offsets) > MAX_ARRIVALS:
        raise QuantserveError(
            f"--trace {path}: {len(offsets)} arrivals, more than {MAX_ARRIVALS} (cut it, or thin it with --trace-scale)"
        )
    return ArrivalTrace(str(path), offsets / speed, period / speed, sizes)


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
    first = line.lower().split(",")[0].strip()
    return any(first == name + unit for name in TIME_COLUMNS for unit in TIME_UNITS)


def _from_intervals(path: Path, lines: list[str]) -> tuple[np.ndarray, float]:
    """perf_analyzer's form: the gap before each request, in µs; arrival k is at the sum of the gaps before it."""
    gaps = []
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        try:
            gap = float(line)
        except ValueError:
            raise QuantserveError(
                f"--trace {path} line {number}: '{line[:40]}' is not a gap in microseconds "
                f"(a CSV of timestamps needs a header with one of: {', '.join(TIME_COLUMNS)})"
            ) from None
        if not np.isfinite(gap) or gap < 0:
            raise QuantserveError(f"--trace {path} line {number}: gap {line} µs is not a number >= 0")
        gaps.append(gap * 1e-6)
    period = float(np.sum(gaps))
    if period <= 0:
        raise QuantserveError(f"--trace {path}: the gaps add up to 0 µs; a replay needs time between requests")
    return np.concatenate([[0.0], np.cumsum(gaps)[:-1]]), period


def _json_lines_as_csv(path: Path, lines: list[str]) -> list[str]:
    """JSON lines as CSV lines (a header of the first object's keys, then each object's values), one for one, so
    every later error names the file's own line."""
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


def _minute_columns(header: list[str]) -> list[int]:
    """Indices of columns named 1, 2, … N in order (Azure Functions' invocations per minute), or none."""
    columns = [i for i, name in enumerate(header) if name.isdigit()]
    if len(columns) < 2 or [int(header[i]) for i in columns] != list(range(1, len(columns) + 1)):
        return []
    return columns


def _from_minute_counts(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], scale: float = 1.0
) -> tuple[np.ndarray, float]:
    """Counts per minute in columns 1 … N, summed over the rows (functions), as a count per 60 s interval."""
    columns = _minute_columns(header)
    totals = np.zeros(len(columns))
    for number, row in rows[1:]:
        cells = [(number, row[i].strip() if i < len(row) else "") for i in columns]
        totals += _as_amounts(path, "a minute's count", cells)
    return _from_counts(path, "count per minute", np.arange(len(columns)) * 60.0, totals * scale, per_second=False)


def _from_timestamps(
    path: Path, lines: list[str], scale: float = 1.0
) -> tuple[np.ndarray, float, np.ndarray | None, bool]:
    """A CSV's arrival-time column; a pass lasts the span plus one mean gap, so looping keeps the mean rate. Also
    whether the rows were counts per interval (scaled here by `scale`, before any arrival is placed)."""
    kept = [(number, line) for number, line in enumerate(lines, start=1) if line and not line.startswith("#")]
    rows = [(number, next(csv.reader([line]))) for number, line in kept]  # a row a line: errors name the file's line
    header = [name.strip() for name in rows[0][1]]
    lowered = [name.lower() for name in header]
    found = [(lowered.index(n + u), u) for n in TIME_COLUMNS for u in TIME_UNITS if n + u in lowered]
    if not found and _minute_columns(header):
        offsets, period = _from_minute_counts(path, header, rows, scale)
        return offsets, period, None, True
    if not found:
        shown = ", ".join(header[:12]) + (f", … ({len(header)} columns)" if len(header) > 12 else "")
        raise QuantserveError(
            f"--trace {path}: no arrival-time column (looked for {', '.join(TIME_COLUMNS)}; found: {shown})"
        )
    column, unit = found[0]
    values = [(number, row[column].strip() if column < len(row) else "") for number, row in rows[1:]]
    seconds = _as_seconds(path, header[column], values, TIME_UNITS[unit] if unit else None)
    counted = [i for i, name in enumerate(lowered) if name in COUNT_COLUMNS + RATE_COLUMNS]
    if counted:
        amounts = [(number, row[counted[0]].strip() if counted[0] < len(row) else "") for number, row in rows[1:]]
        per_second = lowered[counted[0]] in RATE_COLUMNS
        offsets, period = _from_counts(
            path, header[counted[0]], seconds, _as_amounts(path, header[counted[0]], amounts) * scale, per_second
        )
        return offsets, period, None, True
    sized = [i for i, name in enumerate(lowered) if name in SIZE_COLUMNS]
    sizes = None
    if sized:
        cells = [(number, row[sized[0]].strip() if sized[0] < len(row) else "") for number, row in rows[1:]]
        sizes = _as_sizes(path, header[sized[0]], cells)
    if len(seconds) < 2:
        raise QuantserveError(f"--trace {path}: {len(seconds)} arrival(s); a replay needs at least 2 to have a rate")
    order = np.argsort(seconds, kind="stable")
    offsets = seconds[order] - seconds[order][0]
    span = float(offsets[-1])
    if span <= 0:
        raise QuantserveError(f"--trace {path}: every arrival has the same time; a replay needs time between them")
    return offsets, span * len(offsets) / (len(offsets) - 1), None if sizes is None else sizes[order], False


def _as_sizes(path: Path, name: str, values: list[tuple[int, str]]) -> np.ndarray:
    """A request-size column: whole numbers of samples, 1 to MAX_REQUEST_SAMPLES."""
    what = f"a whole number of samples from 1 to {MAX_REQUEST_SAMPLES}"
    return _as_column(path, name, values, int, lambda n: 1 <= n <= MAX_REQUEST_SAMPLES, what).astype(np.int64)


def _as_amounts(path: Path, name: str, values: list[tuple[int, str]]) -> np.ndarray:
    """A count or rate column: finite numbers >= 0."""
    return _as_column(path, name, values, float, lambda x: math.isfinite(x) and x >= 0, "a number >= 0")


def _as_column(
    path: Path,
    name: str,
    values: list[tuple[int, str]],
    parse: Callable[[str], float],
    valid: Callable[[float], bool],
    what: str,
) -> np.ndarray:
    """Each (line number, text) parsed and checked; the first that is not `what` is one line naming it."""
    parsed = []
    for number, value in values:
        try:
            item: float | None = parse(value)
        except ValueError:
            item = None
        if item is None or not valid(item):
            raise QuantserveError(f"--trace {path} line {number}: {name} '{value[:40]}' is not {what}")
        parsed.append(item)
    return np.array(parsed, dtype=np.float64)


def _from_counts(
    path: Path, name: str, seconds: np.ndarray, amounts: np.ndarray, per_second: bool
) -> tuple[np.ndarray, float]:
    """Arrivals from a count (or rate) per interval (module docstring); a pass is the intervals' whole span."""
    order = np.argsort(seconds, kind="stable")
    starts, amounts = seconds[order] - seconds[order][0], amounts[order]
    widths = np.diff(starts)
    if len(starts) < 2 or not np.all(widths > 0):
        raise QuantserveError(
            f"--trace {path}: a {name} per interval needs 2 or more rows at distinct times (an interval runs from "
            "one row's time to the next)"
        )
    widths = np.append(widths, np.median(widths))
    expected = np.cumsum(amounts * widths if per_second else amounts)
    counts = np.diff(np.floor(expected + 1e-9), prepend=0.0).astype(np.int64)  # fractions carried forward
    if counts.sum() < 2:
        raise QuantserveError(f"--trace {path}: {int(counts.sum())} arrival(s) in all; a replay needs at least 2")
    if counts.sum() > MAX_ARRIVALS:
        raise QuantserveError(
            f"--trace {path}: {int(counts.sum())} arrivals, more than {MAX_ARRIVALS} (a smaller --trace-scale thins it)"
        )
    rng = np.random.default_rng(COUNT_SEED)
    offsets = np.repeat(starts, counts) + rng.random(int(counts.sum())) * np.repeat(widths, counts)
    return np.sort(offsets), float(starts[-1] + widths[-1])


def _as_seconds(path: Path, name: str, values: list[tuple[int, str]], unit_s: float | None = 1.0) -> np.ndarray:
    """Numbers (in `unit_s` seconds each; None: seconds, or epoch ms/µs/ns where the first is too large to be
    seconds) if the first value is one, else date-times (numpy's ISO 8601 parser, to the nanosecond; a zone
    suffix, Z or ±HH:MM as JSON and cloud logs write them, moves each to UTC)."""
    numeric = bool(values) and _is_number(values[0][1])
    parsed = []
    for number, value in values:
        try:
            match = None if numeric else DATE_TIME.fullmatch(value)
            if not numeric and match is None:
                raise ValueError(value)
            parsed.append(float(value) if numeric else _utc(match))  # type: ignore[arg-type]
        except ValueError:
            what = "a number of seconds (as the first row)" if numeric else "a date-time (as the first row)"
            raise QuantserveError(f"--trace {path} line {number}: {name} '{value[:40]}' is not {what}") from None
        if numeric and not np.isfinite(parsed[-1]):
            raise QuantserveError(f"--trace {path} line {number}: {name} '{value}' is not a finite number of seconds")
    if not numeric and parsed:
        return (np.array(parsed) - parsed[0]).astype("timedelta64[ns]").astype(np.float64) * 1e-9
    numbers = np.array(parsed, dtype=np.float64)
    if unit_s is None:
        first = abs(float(numbers[0])) if len(numbers) else 0.0
        unit_s = next((unit for floor, unit in EPOCH_UNITS if first >= floor), 1.0)
    return numbers * unit_s


def _utc(match: re.Match[str]) -> np.datetime64:
    """A matched date-time at nanosecond precision, moved to UTC by its zone offset (none: as written)."""
    when = np.datetime64(match[1].replace(" ", "T", 1), "ns")
    zone = match[2]
    if not zone or zone == "Z":
        return when
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return when - np.timedelta64(minutes if zone[0] == "+" else -minutes, "m")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
