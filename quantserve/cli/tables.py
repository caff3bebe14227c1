"""Rich tables that read well at 80 columns and never cut a name.

Every command's result table goes through `print_rows`: name columns are sized to their longest
name (never truncated with "…"), number columns never wrap, free-text columns wrap. When the
console is too narrow for that, each row is printed as a small key-value block instead, so a
model name like `resnet50_v1_int8_entropy` is always readable whole.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from quantserve.json_files import finite_json

NAME, NUMBER, TEXT = "name", "number", "text"
TEXT_MIN_WIDTH = 12  # a wrapping text column is never squeezed below this
MISSING = "–"


@dataclass(frozen=True)
class Column:
    """One table column: its header and how it may be laid out (name, number or text)."""

    header: str
    kind: str = NUMBER


def fmt(value: float | int | None, digits: int = 2) -> str:
    """A number for a table cell; None or NaN (not measured) is "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def needed_width(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> int:
    """Console columns a one-line-per-row table needs: names and numbers whole, text at its minimum."""
    total = 1 + 3 * len(columns)  # borders and one space of padding on each side
    for index, column in enumerate(columns):
        longest = max([len(column.header), *(len(row[index]) for row in rows)])
        total += min(longest, TEXT_MIN_WIDTH) if column.kind == TEXT else longest
    return total


def wide_table(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> Table:
    """The usual grid: names and numbers never wrap or truncate, text columns fold onto more lines."""
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        longest = max([len(column.header), *(len(row[index]) for row in rows)])
        if column.kind == TEXT:
            table.add_column(column.header, overflow="fold", min_width=min(longest, TEXT_MIN_WIDTH))
        else:
            justify: JustifyMethod = "left" if column.kind == NAME else "right"
            table.add_column(column.header, justify=justify, no_wrap=True, overflow="fold", min_width=longest)
    for row in rows:
        table.add_row(*row)
    return table


def vertical_blocks(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> Group:
    """One key-value block per row, headed by the row's name cells: what a narrow console gets."""
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    names = [i for i, c in enumerate(columns) if c.kind == NAME] or [0]
    for row in rows:
        parts.append(Text(" · ".join(row[i] for i in names if row[i]) or MISSING, style="bold cyan"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for index, column in enumerate(columns):
            if index not in names:
                grid.add_row(f"  {column.header}", row[index])
        parts.append(grid)
    return Group(*parts)


def transposed(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> tuple[list[Column], list[list[str]]]:
    """Rows become columns (headed by each row's name), columns become rows: a few variants side by side."""
    names = [i for i, c in enumerate(columns) if c.kind == NAME] or [0]
    new_columns = [Column("", NAME), *(Column(" · ".join(row[i] for i in names), NUMBER) for row in rows)]
    new_rows = [[c.header, *(row[i] for row in rows)] for i, c in enumerate(columns) if i not in names]
    return new_columns, new_rows


def rows_renderable(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> RenderableType:
    """A grid when it fits in `width` columns; else the grid turned sideways if that fits; else key-value blocks.

    The title is a line of its own, so it wraps at the console's width rather than the table's.
    """
    heading = [Text(title, style="bold")] if title else []
    if needed_width(columns, rows) <= width:
        return Group(*heading, wide_table(None, columns, rows))
    if any(c.kind == TEXT for c in columns) or not rows:
        return vertical_blocks(title, columns, rows)
    side_columns, side_rows = transposed(columns, rows)
    if needed_width(side_columns, side_rows) <= width:
        return Group(*heading, wide_table(None, side_columns, side_rows))
    return vertical_blocks(title, columns, rows)


def print_rows(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]], console: Console | None = None
) -> None:
    """Print a result table laid out for the console's width."""
    console = console or Console()
    console.print(rows_renderable(title, columns, rows, console.width))


def print_json(document: Any) -> None:
    """`--json`: one JSON document on stdout and nothing else (NaN written as null)."""
    sys.stdout.write(json.dumps(finite_json(document), indent=2, default=str) + "\n")
    sys.stdout.flush()


def add_json_flag(parser: Any) -> None:
    """The `--json` flag every table-printing command shares."""
    parser.add_argument("--json", action="store_true", help="print one JSON document to stdout and nothing else")


def load_columns() -> list[Column]:
    """The load-test result columns (client latency; avg batch and queue from Triton's counters)."""
    headers = ("req/s", "p50 ms", "p99 ms", "avg batch", "queue µs", "failed")
    return [Column("step", NAME), Column("requests"), *(Column(h) for h in headers)]


def load_rows(results: Sequence[Any]) -> list[list[str]]:
    """One row per load step; server-side cells are "–" where Triton's metrics were not read or ran nothing."""
    rows = []
    for r in results:
        server = r.server_figures
        rows.append(
            [
                r.label,
                str(r.requests),
                fmt(r.throughput_rps, 1),
                fmt(r.latency.p50_ms),
                fmt(r.latency.p99_ms),
                fmt(r.avg_batch_size),
                fmt(server.avg_queue_us, 0) if server else MISSING,
                str(r.failed_requests),
            ]
        )
    return rows


def print_load_table(results: Sequence[Any], console: Console | None = None) -> None:
    """The load-test table `loadtest` and `evaluate --load-duration` print."""
    title = "load test (client latency; avg batch from Triton's counters)"
    print_rows(title, load_columns(), load_rows(results), console)
