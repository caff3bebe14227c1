"""A trace CSV's rows read a whole column at a time: arrival times (numbers in a unit, or date-times with a zone),
request sizes, counts and rates (`loadtest.arrival_trace` picks the columns). Kept apart from the trace's forms: it
is where every cell is parsed and checked, and every bad cell is one line naming the file's line at fault.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

MAX_REQUEST_SAMPLES = 4096  # a request's samples, as a sanity bound (Triton's max_batch_size is far below)
# a date-time, its zone (Z or ±HH:MM) optional: without one, every row is taken in the same (unknown) zone; its
# fraction of a second after a point or, as ISO 8601 allows and Python's logging writes ("12:00:00,010"), a comma
DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?")
# unit-less numbers this large are no Unix time in seconds (1e11 s is the year 5138): epoch ms, µs or ns
EPOCH_UNITS = ((1e17, 1e-9), (1e14, 1e-6), (1e11, 1e-3))
# Unit-less stamps read as seconds whose replay has this many arrivals a mean gap this long apart or longer look like
# milliseconds (issue 11: 1000 arrivals of a 10 s test, stamped in ms, planned a 2.8 h pass at 0.098 req/s). Real
# traces with relative stamps: Mooncake's and Alibaba's microservice traces write ms (gaps of tens to thousands),
# Azure Functions 2021 and BurstGPT seconds; a trace meant for a load test rarely offers under 1 req/s over 1000
# arrivals, and one that does (BurstGPT: 0.2 req/s) hears how to say its unit, a warning, never a refusal.
MS_SUSPECT_ARRIVALS = 1000
MS_SUSPECT_MEAN_GAP_S = 1.0
# ... and, whatever the row count, whole-number stamps this far apart on median: 300 rows of 0, 10, …, 2990 (ms) were
# read as a 3000 s pass without a word (session 31); a load-test trace in seconds is rarely whole seconds 10 s apart
MS_SUSPECT_WHOLE_GAP_S = 10.0
# how close (difflib's ratio) an unread column's name must be to a name the reader knows to be taken for a typo of it:
# `batch_sise` (0.9 to batch_size) was ignored, every request replayed at --request-batch (session 52); a log's
# `requestId` (0.82 to requests) is no typo, and `model`, `prompt_tokens` or `hash_ids` are far below it
NEAR_MISS_CUTOFF = 0.85
# what a spreadsheet's or a tool's export may split columns by instead of the comma a trace CSV needs
OTHER_DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "bars (|)"}


@dataclass(frozen=True)
class TraceRows:
    """A CSV's data rows under its header, read a whole column at a time (a row per record: `numbers` are the file's
    line each starts on, so every error names the line at fault; a quoted cell may span lines, `_records`)."""

    path: Path
    header: list[str]
    numbers: list[int]
    lines: list[str]

    @classmethod
    def of(cls, path: Path, lines: list[str], first_line: int = 1) -> TraceRows:
        records = _records(lines)
        # a row of empty cells (a spreadsheet's export ends with `,,` rows) is no record: skipped as a blank line is
        kept = [(index, line) for index, line in records if line.strip(" \t,") and line[0] != "#"]
        header = [name.strip() for name in next(csv.reader([kept[0][1]]))]
        _refuse_other_delimiter(path, header, kept[0][0] + first_line)
        return cls(path, header, [index + first_line for index, _ in kept[1:]], [line for _, line in kept[1:]])

    def cells(self, column: int) -> list[str]:
        """Column `column` of every row, stripped ("" where a row is shorter); a row with more cells than the header
        has names is refused (`_refuse_extra_cells`)."""
        joined = "\n".join(self.lines) if len(self.header) == 1 else ","
        if "," not in joined and '"' not in joined:
            return self.lines  # one column, nothing quoted: each line is its cell (3× faster than csv for millions)
        rows = list(csv.reader(self.lines))
        if len(rows) != len(self.lines):  # an unclosed quote ran on into the next line: read each line alone
            rows = [next(csv.reader([line])) for line in self.lines]
        self._refuse_extra_cells(rows)
        return [row[column].strip() if column < len(row) else "" for row in rows]

    def _refuse_extra_cells(self, rows: list[list[str]]) -> None:
        """One line naming the first row with more (non-empty) cells than the header has names: its cells were read
        by position, so a comma inside a value split it and the column read its first part alone. A decimal comma
        ("1714564800,010" under `time`) or Python logging's "12:00:00,010" lost its milliseconds without a word:
        500 arrivals 10 ms apart replayed as 5 bursts of 100 (issue 11). Empty cells past the header (a trailing
        comma, as spreadsheets export) are no values and pass."""
        names = len(self.header)
        row = next(
            (i for i, cells in enumerate(rows) if len(cells) > names and any(c.strip() for c in cells[names:])), None
        )
        if row is None:
            return
        shown = ", ".join(f"'{cell.strip()[:24]}'" for cell in rows[row][: names + 2])
        more = ", …" if len(rows[row]) > names + 2 else ""
        header = ", ".join(f"'{name[:24]}'" for name in self.header)
        raise QuantserveError(
            f"--trace {self.path} line {self.numbers[row]}: {len(rows[row])} cells ({shown}{more}) under a header of "
            f"{names} name{'s' if names > 1 else ''} ({header}): a comma inside a value splits it (a decimal comma, "
            "or a time written '12:00:00,010'); write decimals with a point, or quote the value"
        )

    def refuse(self, row: int, name: str, value: str, what: str) -> QuantserveError:
        return QuantserveError(f"--trace {self.path} line {self.numbers[row]}: {name} '{value[:40]}' {what}")


def _records(lines: list[str]) -> list[tuple[int, str]]:
    """The file's CSV records, each with the index of the line it starts on: a quoted cell may hold line breaks (a
    prompt column of an LLM-serving log; issue 11: "timestamp 'world\"' is not a number of seconds"), so a line that
    leaves a quote open is joined with the next until it closes. A quote still open at the file's end is a broken
    file, not a cell: every line is then a record of its own (and the bad cell is named by its line)."""
    if not any('"' in line for line in lines):
        return list(enumerate(lines))  # nothing quoted (most traces, some of millions of rows): a record a line
    records: list[tuple[int, str]] = []
    parts: list[str] = []
    start, quotes = 0, 0
    for index, line in enumerate(lines):
        if not parts:
            start = index
        parts.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            records.append((start, "\n".join(parts)))
            parts, quotes = [], 0
    if parts:  # an unclosed quote ran to the end of the file
        return list(enumerate(lines))
    return records


def refuse_near_misses(rows: TraceRows, read: set[int], known: list[str]) -> None:
    """One line naming the first column not `read` whose name (any case) is a near miss of a `known` one
    (NEAR_MISS_CUTOFF): a typo there silently dropped what the column says. A known name left unread (a second time
    column) and any other column stay ignored, as the trace's other columns are."""
    for index, name in enumerate(rows.header):
        if index in read or name.lower() in known:
            continue
        near = difflib.get_close_matches(name.lower(), known, n=1, cutoff=NEAR_MISS_CUTOFF)
        if near:
            raise QuantserveError(f"--trace {rows.path}: column '{name}' is not read; did you mean '{near[0]}'?")


def other_delimiter(line: str) -> str | None:
    """The delimiter other than a comma a line with none splits its cells by (`OTHER_DELIMITERS`), else None."""
    return None if "," in line else next((d for d in OTHER_DELIMITERS if d in line), None)


def _refuse_other_delimiter(path: Path, header: list[str], number: int) -> None:
    """One line where the header is one name holding another delimiter: "timestamp;batch_size" read "no arrival-time
    column", a tab-separated one "not a gap in microseconds", neither naming the delimiter."""
    found = other_delimiter(header[0]) if len(header) == 1 else None
    if found is not None:
        shown = header[0][:60].replace("\t", "\\t")
        raise QuantserveError(
            f"--trace {path} line {number}: the header '{shown}' splits its columns by {OTHER_DELIMITERS[found]}; a "
            "trace CSV's are split by commas (save it comma-separated)"
        )


def as_sizes(rows: TraceRows, name: str, cells: list[str]) -> np.ndarray:
    """A request-size column: whole numbers of samples, 1 to MAX_REQUEST_SAMPLES. Read as floats, so `2.0` or `2e0`
    count as 2 (pandas writes an integer column holding a missing value as floats); `2.5` is refused."""
    what = f"is not a whole number of samples from 1 to {MAX_REQUEST_SAMPLES}"
    sizes = _as_column(rows, name, cells, np.float64, _is_request_size, what)
    return sizes.astype(np.int64)


def _is_request_size(n: np.ndarray) -> np.ndarray:
    return (n >= 1) & (n <= MAX_REQUEST_SAMPLES) & (n == np.floor(n))


def as_amounts(rows: TraceRows, name: str, cells: list[str]) -> np.ndarray:
    """A count or rate column: finite numbers >= 0."""
    return _as_column(rows, name, cells, np.float64, lambda x: np.isfinite(x) & (x >= 0), "is not a number >= 0")


def _as_column(
    rows: TraceRows,
    name: str,
    cells: list[str],
    dtype: Any,
    valid: Callable[[np.ndarray], np.ndarray],
    what: str,
    unparsed: str = "",
    converted: list[str] | None = None,
) -> np.ndarray:
    """The cells (or the texts `converted` from them) as numbers, converted a whole column at once (each as `float`,
    `int` or `np.datetime64` would read it alone); the first that does not parse (`unparsed`, else `what`) or is
    not `valid` (`what`) is one line naming it."""
    texts = cells if converted is None else converted
    try:
        values = np.array(texts, dtype=dtype)
    except (ValueError, OverflowError):
        bad = next(i for i, text in enumerate(texts) if not _parses(text, dtype))
        raise rows.refuse(bad, name, cells[bad], unparsed or what) from None
    invalid = np.flatnonzero(~valid(values))
    if len(invalid):
        raise rows.refuse(int(invalid[0]), name, cells[int(invalid[0])], what)
    return values


def _parses(cell: str, dtype: Any) -> bool:
    try:
        np.array([cell], dtype=dtype)
    except (ValueError, OverflowError):
        return False
    return True


def as_seconds(rows: TraceRows, name: str, cells: list[str], unit_s: float | None = 1.0) -> np.ndarray:
    """Numbers (in `unit_s` seconds each; None: seconds, or epoch ms/µs/ns where the first is too large to be
    seconds) if the first value is one, else date-times (`_as_date_times`)."""
    if not (cells and is_number(cells[0])):
        return _as_date_times(rows, name, cells)
    numbers = _as_column(
        rows,
        name,
        cells,
        np.float64,
        np.isfinite,
        "is not a finite number of seconds",
        "is not a number of seconds (as the first row)",
    )
    if unit_s is None:
        first = abs(float(numbers[0])) if len(numbers) else 0.0
        unit_s = next((unit for floor, unit in EPOCH_UNITS if first >= floor), 1.0)
    return numbers * unit_s


def read_as_plain_seconds(cells: list[str]) -> bool:
    """Whether a unit-less time column is read as seconds: numbers, the first too small to be epoch ms/µs/ns."""
    return bool(cells) and is_number(cells[0]) and abs(float(cells[0])) < EPOCH_UNITS[-1][0]


def millisecond_stamps_note(
    path: Path | str, column: str, offsets_s: np.ndarray, speed: float, pass_s: float
) -> str | None:
    """A warning where stamps read as seconds look like milliseconds (the rules above), naming how to say the unit.
    `offsets_s`: the stamps from the first, as read (before `speed`); `pass_s`: a pass as replayed."""
    arrivals = len(offsets_s)
    mean_gap_s = pass_s / arrivals if arrivals else 0.0
    median_gap_s = float(np.median(np.diff(offsets_s))) / speed if arrivals > 1 else 0.0
    whole = bool(np.all(offsets_s == np.round(offsets_s)))
    many_slow = arrivals >= MS_SUSPECT_ARRIVALS and mean_gap_s >= MS_SUSPECT_MEAN_GAP_S
    if not many_slow and not (whole and median_gap_s >= MS_SUSPECT_WHOLE_GAP_S):
        return None
    apart = f" a mean {mean_gap_s:.3g} s apart" if many_slow else f", whole numbers a median {median_gap_s:.3g} s apart"
    return (
        f"warning: --trace {path}: column '{column}' has no unit, so its stamps are read as seconds: {arrivals} "
        f"arrivals{apart} ({arrivals / pass_s:.3g} req/s); if they are milliseconds, name "
        f"the column '{column}_ms' or replay with --trace-speed 1000 (naming it '{column}_s' says they are seconds)"
    )


def order_note(rows: TraceRows, seconds: np.ndarray, cells: list[str]) -> str | None:
    """A line where rows come earlier than the row before them (logs merged from several servers, an export newest
    first): they are replayed in time order, and the user hears so rather than finding the sort silently (issue 11).
    A stray stamp among them is named, line and value (`_strays_note`)."""
    back = np.flatnonzero(np.diff(seconds) < 0)
    if not len(back):
        return None
    first = rows.numbers[int(back[0]) + 1]
    what = (
        "every row is earlier than the one before (newest first)"
        if len(back) == len(seconds) - 1
        else (f"{len(back)} of {len(seconds)} rows are earlier than the row before them (the first at line {first})")
    )
    strays = _strays_note(rows, seconds, cells)
    return f"trace {rows.path}: {what}{'; ' + strays if strays else ''}; the arrivals are replayed in time order"


def stray_rows(seconds: np.ndarray) -> np.ndarray:
    """Rows whose stamp lies outside the two rows around it, in order themselves, by more than the gap between them:
    a lone -1 among rows of 0–60 s (a typo, a clock reset) rather than a merge of logs or a newest-first export."""
    before, here, after = seconds[:-2], seconds[1:-1], seconds[2:]
    gap = after - before
    return np.flatnonzero((gap >= 0) & ((here < before - gap) | (here > after + gap))) + 1


def _strays_note(rows: TraceRows, seconds: np.ndarray, cells: list[str], shown: int = 3) -> str:
    """The stray rows (`stray_rows`), line and stamp as the file writes it, and where one is the pass's first or last
    arrival, how far it moves the pass's edge. Noted, not refused (a negative µs gap of --request-intervals is): a
    CSV's stamps are times of any origin (a trace wholly before zero is read as relative), a row earlier than the one
    before it is replayed sorted, so a stray is a time like any other; the note says where it took the pass."""
    strays = stray_rows(seconds)
    if not len(strays):
        return ""
    if len(strays) == 1:
        row = int(strays[0])
        around = f"'{cells[row - 1][:24]}' and '{cells[row + 1][:24]}'"
        words = f"line {rows.numbers[row]}'s stamp '{cells[row][:40]}' lies outside the rows around it ({around})"
    else:
        named = [f"{rows.numbers[int(i)]} ('{cells[int(i)][:24]}')" for i in strays[:shown]]
        last = f"{len(strays) - shown} more" if len(strays) > shown else named.pop()
        words = f"lines {', '.join(named)} and {last} lie outside the rows around them"
    return words + _edge_words(rows, seconds, strays)


def _edge_words(rows: TraceRows, seconds: np.ndarray, strays: np.ndarray) -> str:
    """`, and is the pass's first arrival, 1 s before the next` where a stray row is the trace's earliest (or its
    latest: after the one before; `, line 9's is …` among several strays), else ""."""
    ordered = np.sort(seconds)
    for row in strays:
        who = "and" if len(strays) == 1 else f"line {rows.numbers[int(row)]}'s"
        if seconds[row] == ordered[0] and ordered[1] > ordered[0]:
            return f", {who} is the pass's first arrival, {ordered[1] - ordered[0]:.3g} s before the next"
        if seconds[row] == ordered[-1] and ordered[-1] > ordered[-2]:
            return f", {who} is the pass's last arrival, {ordered[-1] - ordered[-2]:.3g} s after the one before"
    return ""


def _as_date_times(rows: TraceRows, name: str, cells: list[str]) -> np.ndarray:
    """Date-times as seconds from the first (numpy's ISO 8601 parser, to the nanosecond, a whole column at once);
    a zone suffix, Z or ±HH:MM as JSON and cloud logs write them, moves each to UTC: on every row, or on none."""
    matches = [DATE_TIME.fullmatch(cell) for cell in cells]
    dates = [match[1].replace(" ", "T", 1).replace(",", ".") if match else "NaT" for match in matches]  # NaT: refused
    what = "is not a date-time (as the first row)"
    when = _as_column(rows, name, cells, "datetime64[ns]", lambda t: ~np.isnat(t), what, converted=dates)
    shift = np.zeros(len(cells), dtype="timedelta64[m]")
    for row, zone in enumerate(match[2] if match else None for match in matches):
        if zone and zone != "Z":
            shift[row] = _zone_minutes(rows, row, name, cells[row], zone)
    _refuse_mixed_zones(rows, name, [bool(match and match[2]) for match in matches])
    if not len(when):
        return np.zeros(0)
    utc = when - shift
    return (utc - utc[0]).astype("timedelta64[ns]").astype(np.float64) * 1e-9


def _refuse_mixed_zones(rows: TraceRows, name: str, zoned: list[bool]) -> None:
    """Refuse, in one line naming their lines, date-times of which some carry a zone and some do not: the zone-less
    ones' zone is unknown (read as UTC beside zoned ones, a trace's rows two hours apart made a 2 h pass of 600
    arrivals, played at 54 req/s without a word)."""
    if all(zoned) or not any(zoned):
        return
    with_zone = [number for number, has in zip(rows.numbers, zoned, strict=True) if has]
    without = [number for number, has in zip(rows.numbers, zoned, strict=True) if not has]
    raise QuantserveError(
        f"--trace {rows.path}: column '{name}': {_lines(with_zone)} {'carry' if len(with_zone) > 1 else 'carries'} "
        f"a time zone and {_lines(without)} {'do' if len(without) > 1 else 'does'} not; give every timestamp a zone, "
        "or none"
    )


def _lines(numbers: list[int], shown: int = 3) -> str:
    """`line 4`, `lines 2, 4, 6` or `lines 2, 4, 6, … (300 lines)`: the first `shown` of a file's line numbers."""
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    head = ", ".join(str(number) for number in numbers[:shown])
    return f"lines {head}" + (f", … ({len(numbers)} lines)" if len(numbers) > shown else "")


def _zone_minutes(rows: TraceRows, row: int, name: str, cell: str, zone: str) -> int:
    """A ±HH:MM (or ±HHMM, or ±HH as ISO 8601 allows: `+01` was refused as "not a date-time", session 41) zone as
    minutes east of UTC; hours above 23 or minutes above 59 are no zone."""
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise rows.refuse(row, name, cell, f"has zone {zone}, not one from -23:59 to +23:59")
    return (hours * 60 + minutes) * (1 if zone[0] == "+" else -1)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
