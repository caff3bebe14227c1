"""Reading back what the Locust processes recorded: the measured window, exact latencies, failures.

Kept apart from `loadtest.recording` because that module imports locust (which monkey-patches
the interpreter) and this one is read by the harness in the ordinary process.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

WINDOW_FILE = "window.json"
LATENCY_PATTERN = "latencies-*.npy"


@dataclass
class Window:
    """Wall-clock bounds of the measured window and Triton's counters scraped at each end."""

    start: float
    end: float
    metrics_before: dict[str, Any] | None
    metrics_after: dict[str, Any] | None


def clear(record_dir: Path) -> None:
    """Remove an earlier step's records so they cannot be mixed into this one."""
    shutil.rmtree(record_dir, ignore_errors=True)
    record_dir.mkdir(parents=True, exist_ok=True)


def read_window(record_dir: Path) -> Window:
    path = record_dir / WINDOW_FILE
    if not path.is_file():
        raise QuantserveError(f"locust recorded no measured window (logs: {record_dir}); did any user start?")
    data = json.loads(path.read_text())
    return Window(data["start"], data["end"], data.get("metrics_before"), data.get("metrics_after"))


SAMPLE_COLUMNS = 7


def read_latencies(record_dir: Path, start: float, end: float) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok, send lag ms, generator lag ms, samples in the request, requests in
    flight at its arrival) from every Locust process, for requests ending in the window."""
    parts = [np.load(path) for path in sorted(record_dir.glob(LATENCY_PATTERN))]
    if not parts:
        return np.zeros((0, SAMPLE_COLUMNS))
    samples = np.concatenate(parts)
    return samples[(samples[:, 0] >= start) & (samples[:, 0] <= end)]


def read_failures(csv_prefix: Path) -> dict[str, int]:
    """Locust's failure table: `{error message: occurrences}`."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(handle)}
