"""A trace kept as a count per interval instead of a row per request (a dashboard's requests per second or per
minute, Azure Functions' per-minute columns), placed as arrivals: within an interval they fall as a Poisson process
would given their number, seeded, a fractional count carried to the next interval (`loadtest.arrival_trace`'s
docstring). Kept apart from the trace's forms and its replay: this is where counts become arrival times.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from loadtest.trace_columns import TraceRows, as_amounts
from quantserve.errors import QuantserveError

COUNT_COLUMNS = ("count", "requests", "invocations")  # arrivals in the row's interval
RATE_COLUMNS = ("rate", "rps", "qps")  # arrivals per second over the row's interval
COUNT_SEED = 0  # where in its interval each counted arrival falls: fixed, so a replay is repeatable
MAX_ARRIVALS = 10_000_000  # a trace's arrivals held in memory (80 MB of float64)


def minute_columns(header: list[str]) -> list[int]:
    """Indices of columns named 1, 2, … N in order (Azure Functions' invocations per minute), or none."""
    columns = [i for i, name in enumerate(header) if name.isdigit()]
    if len(columns) < 2 or [int(header[i]) for i in columns] != list(range(1, len(columns) + 1)):
        return []
    return columns


def from_minute_counts(rows: TraceRows, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Counts per minute in columns 1 … N, summed over the rows (functions), as a count per 60 s interval."""
    columns = minute_columns(rows.header)
    table = [next(csv.reader([line])) for line in rows.lines]
    cells = [row[i].strip() if i < len(row) else "" for row in table for i in columns]
    flat = TraceRows(rows.path, rows.header, [number for number in rows.numbers for _ in columns], [])
    totals = as_amounts(flat, "a minute's count", cells).reshape(len(table), len(columns)).sum(axis=0)

    def describe(minute: int) -> str:
        return f": minute {rows.header[columns[minute]]}'s count {totals[minute]:g} (summed over the rows)"

    starts = np.arange(len(columns)) * 60.0
    offsets, period, _ = _from_counts(rows.path, "count per minute", starts, totals * scale, False, describe)
    return offsets, period


def from_column_counts(
    rows: TraceRows, column: int, seconds: np.ndarray, scale: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """`_from_counts` of a count or rate column, each row named by its line if its interval holds too many."""
    name, cells = rows.header[column], rows.cells(column)
    amounts = as_amounts(rows, name, cells) * scale

    def describe(row: int) -> str:
        return f" line {rows.numbers[row]}: {name} '{cells[row][:40]}'"

    return _from_counts(rows.path, name, seconds, amounts, name.lower() in RATE_COLUMNS, describe)


def _from_counts(
    path: Path,
    name: str,
    seconds: np.ndarray,
    amounts: np.ndarray,
    per_second: bool,
    describe: Callable[[int], str],
) -> tuple[np.ndarray, float, np.ndarray]:
    """Arrivals from a count (or rate) per interval (module docstring); a pass is the intervals' whole span. Also
    the row each arrival came from. An interval expecting more than MAX_ARRIVALS is refused, named by
    `describe(row)` (it overflowed into "-9223372036854775808 arrival(s)")."""
    order = np.argsort(seconds, kind="stable")
    starts, amounts = seconds[order] - seconds[order][0], amounts[order]
    widths = np.diff(starts)
    if len(starts) < 2 or not np.all(widths > 0):
        raise QuantserveError(
            f"--trace {path}: a {name} per interval needs 2 or more rows at distinct times (an interval runs from "
            "one row's time to the next)"
        )
    widths = np.append(widths, np.median(widths))
    per_interval = amounts * widths if per_second else amounts
    over = np.flatnonzero(~(per_interval <= MAX_ARRIVALS))  # NaN and inf too (0 × an infinite width)
    if len(over):
        at = int(over[0])
        raise QuantserveError(
            f"--trace {path}{describe(int(order[at]))} over its {widths[at]:g} s interval is "
            f"{per_interval[at]:.3g} arrivals, more than {MAX_ARRIVALS} (a smaller --trace-scale thins it)"
        )
    expected = np.cumsum(per_interval)
    if expected[-1] > MAX_ARRIVALS:
        raise QuantserveError(
            f"--trace {path}: {expected[-1]:.0f} arrivals, more than {MAX_ARRIVALS} (a smaller --trace-scale thins it)"
        )
    counts = np.diff(np.floor(expected + 1e-9), prepend=0.0).astype(np.int64)  # fractions carried forward
    if counts.sum() < 2:
        raise QuantserveError(f"--trace {path}: {int(counts.sum())} arrival(s) in all; a replay needs at least 2")
    rng = np.random.default_rng(COUNT_SEED)
    offsets = np.repeat(starts, counts) + rng.random(int(counts.sum())) * np.repeat(widths, counts)
    placed = np.argsort(offsets, kind="stable")
    return offsets[placed], float(starts[-1] + widths[-1]), np.repeat(order, counts)[placed]
