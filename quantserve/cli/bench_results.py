"""`quantserve bench` results as data: rows of repeated figures, the ratios between rows, the targets.

A row's figure is the median of its repeats, with the spread (min-max) beside it. A ratio is the
median of one row's figure over the median of another's (so anyone can recompute it from the
rows), with the spread of the per-repeat ratios. Everything here saves to JSON; the table is
rendered from the JSON (`quantserve.cli.commands.bench`).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantserve.cli.tables import finite_json
from quantserve.files import write_atomic

BENCH_FILE = "bench.json"

# Row number → (key, label). The numbers are the issue's: ratios are named after them.
ROWS = {
    1: ("torch_eager_fp32", "PyTorch eager FP32"),
    2: ("ort_fp32", "ONNX Runtime FP32"),
    3: ("ort_int8", "ONNX Runtime INT8"),
    4: ("triton_fp32_naive", "Triton FP32 naive"),
    5: ("triton_int8_tuned", "Triton INT8 tuned"),
}
FIGURES = ("saturation_samples_per_s", "concurrent_samples_per_s", "p50_ms", "p99_ms")
MIN_REPEATS = 3  # a ratio over fewer has no spread worth the name: said beside it, not quoted bare
# A fixed-concurrency figure counts the requests that end inside its window (`bench_inprocess.concurrent_requests`):
# unbiased, but off by up to one request per client at each edge, and a window shorter than a second can land in
# one quiet or busy stretch of a shared machine's load. Session 56: `bench --quick`'s 0.4 s window read FP32
# 34000 samples/s, 2.4x its own saturation row; the same session by hand read 15.0k over 0.4 s and 12.6k over 3 s.
MIN_TRUSTED_WINDOW_S = 1.0  # a measured window under this is not a figure to quote
MIN_TRUSTED_REQUESTS_PER_CLIENT = 20  # fewer: the one-request-per-client edge alone may move it by over 5 %


@dataclass(frozen=True)
class RatioSpec:
    """One ratio of the issue: row `top`'s `figure` over row `bottom`'s."""

    key: str
    top: int
    bottom: int
    figure: str
    meaning: str
    target: float | None = None  # the bar, where it sets one
    target_models: tuple[str, ...] = ()  # () = every model


RATIOS = (
    RatioSpec("5/1", 5, 1, "concurrent_samples_per_s", "served tuned INT8 over PyTorch eager FP32, same clients", 3.0),
    RatioSpec("5/4", 5, 4, "concurrent_samples_per_s", "served tuned INT8 over a naive FP32 deployment"),
    RatioSpec("3/2", 3, 2, "saturation_samples_per_s", "INT8 over FP32 in ONNX Runtime", 2.5, ("cnn",)),
    RatioSpec(
        "served5/inprocess3", 5, 3, "saturation_samples_per_s", "served INT8 over in-process INT8 at saturation", 0.8
    ),
)


@dataclass
class Figure:
    """One measured quantity over the repeats."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        finite = [v for v in self.runs if math.isfinite(v)]
        return statistics.median(finite) if finite else math.nan

    def to_dict(self) -> dict[str, Any]:
        finite = [v for v in self.runs if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (math.nan, math.nan)
        return {"median": self.median, "min": low, "max": high, "runs": self.runs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        return cls([math.nan if v is None else float(v) for v in data["runs"]])


@dataclass
class RowResult:
    """One of the five ways of running the model, its figures over the repeats and how it was run."""

    row: int
    where: str  # "in-process" or "served"
    how: str  # a sentence: threads, batching, instances, clients
    config: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=lambda: {name: Figure() for name in FIGURES})
    extra: dict[str, Figure] = field(default_factory=dict)  # served: avg batch, failed requests
    not_measured: str | None = None  # why the row has no figures (an ONNX model has no PyTorch form for row 1)

    @property
    def key(self) -> str:
        return ROWS[self.row][0]

    @property
    def label(self) -> str:
        return ROWS[self.row][1]

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            target = self.figures if name in FIGURES else self.extra
            target.setdefault(name, Figure()).runs.append(float(value))

    @property
    def concurrent_doubt(self) -> str | None:
        """Why this row's fixed-concurrency figure is not one to quote, or None (`concurrency_doubt`)."""
        return concurrency_doubt(self.extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "key": self.key,
            "label": self.label,
            "where": self.where,
            "how": self.how,
            "config": self.config,
            **{name: figure.to_dict() for name, figure in self.figures.items()},
            "extra": {name: figure.to_dict() for name, figure in self.extra.items()},
            "not_measured": self.not_measured,
            "concurrent_doubt": self.concurrent_doubt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowResult:
        return cls(
            data["row"], data["where"], data["how"], data.get("config", {}),
            {name: Figure.from_dict(data[name]) for name in FIGURES},
            {name: Figure.from_dict(v) for name, v in data.get("extra", {}).items()}, data.get("not_measured"),
        )  # fmt: skip


def concurrency_doubt(extra: dict[str, Figure]) -> str | None:
    """Why a fixed-concurrency figure is not one to quote, or None: a repeat's measured window (`window_s`, recorded
    by the in-process rows) under MIN_TRUSTED_WINDOW_S, or fewer than MIN_TRUSTED_REQUESTS_PER_CLIENT requests a
    client in it (`requests` over `clients`). Rows that record no window (served: seconds long) have none."""
    windows = [w for w in extra.get("window_s", Figure()).runs if math.isfinite(w)]
    if not windows:
        return None
    requests, clients = extra.get("requests", Figure()).runs, extra.get("clients", Figure()).runs
    per_client = [r / c for r, c in zip(requests, clients, strict=False) if c > 0 and math.isfinite(r)]
    shortest, fewest = min(windows), min(per_client, default=math.inf)
    if shortest >= MIN_TRUSTED_WINDOW_S and fewest >= MIN_TRUSTED_REQUESTS_PER_CLIENT:
        return None
    where = next(i for i, w in enumerate(extra["window_s"].runs) if w == shortest)
    counted = requests[where] if where < len(requests) else math.nan
    said = f"measured over {shortest:.2f} s ({counted:.0f} requests)"
    why = (
        f"a window under {MIN_TRUSTED_WINDOW_S:g} s"
        if shortest < MIN_TRUSTED_WINDOW_S
        else f"under {MIN_TRUSTED_REQUESTS_PER_CLIENT} requests a client"
    )
    return f"{said}: {why}; not a figure to quote"


def ratio(spec: RatioSpec, rows: dict[int, RowResult], model: str) -> dict[str, Any]:
    """The ratio of the row medians, the per-repeat spread, and whether the issue's target is met; where a row it
    needs was not measured, no value (None, not NaN: a NaN read as a figure in the table) and that row's reason."""
    missing = [n for n in (spec.top, spec.bottom) if rows[n].not_measured]
    if missing:
        return absent_ratio(spec, f"row {missing[0]} not measured: {rows[missing[0]].not_measured}")
    top, bottom = rows[spec.top].figures[spec.figure], rows[spec.bottom].figures[spec.figure]
    value = top.median / bottom.median if bottom.median else math.nan
    per_repeat = [t / b for t, b in zip(top.runs, bottom.runs, strict=False) if b and math.isfinite(t / b)]
    applies = spec.target is not None and (not spec.target_models or model in spec.target_models)
    return {
        "value": value,
        "min": min(per_repeat, default=math.nan),
        "max": max(per_repeat, default=math.nan),
        "repeats": len(per_repeat),
        "doubt": ratio_doubt(top, bottom, len(per_repeat)) or window_doubt(spec, rows),
        "of": f"row {spec.top} {spec.figure} / row {spec.bottom} {spec.figure}",
        "meaning": spec.meaning,
        "target": spec.target if applies else None,
        "met": (value >= spec.target) if applies and spec.target is not None else None,
    }


def ratio_doubt(top: Figure, bottom: Figure, repeats: int) -> str | None:
    """Why a ratio is not a figure to quote, or None: fewer than MIN_REPEATS repeats, or rows so spread that the
    ratio could lie either side of 1.0 (its top row's min over the bottom's max up to the top's max over the
    bottom's min). Session 45: `bench --quick`'s one-repeat 5/4 read 0.35 in one run and 1.05 in the next on a busy
    machine, printed bare as if either were the figure."""
    if repeats < MIN_REPEATS:
        said = "one repeat: no spread measured" if repeats == 1 else f"{repeats} repeats: too few to show a spread"
        return f"{said}; not a figure to quote"
    tops, bottoms = top.to_dict(), bottom.to_dict()
    top_low, top_high, bottom_low, bottom_high = tops["min"], tops["max"], bottoms["min"], bottoms["max"]
    if not (bottom_low > 0 and bottom_high > 0):
        return None
    low, high = top_low / bottom_high, top_high / bottom_low
    if low < 1.0 < high:
        return f"its rows' spread puts it anywhere in {low:.2f}-{high:.2f}, either side of 1: not a figure to quote"
    return None


def window_doubt(spec: RatioSpec, rows: dict[int, RowResult]) -> str | None:
    """A concurrency ratio whose row's figure is itself not one to quote (`concurrency_doubt`): that row's words."""
    if spec.figure != "concurrent_samples_per_s":
        return None
    return next((f"row {n} {d}" for n in (spec.top, spec.bottom) if (d := rows[n].concurrent_doubt)), None)


def absent_ratio(spec: RatioSpec, reason: str) -> dict[str, Any]:
    """A ratio that could not be taken, with why."""
    of = f"row {spec.top} {spec.figure} / row {spec.bottom} {spec.figure}"
    empty = {"value": None, "min": None, "max": None, "repeats": 0, "doubt": None, "target": None, "met": None}
    return {**empty, "of": of, "meaning": spec.meaning, "not_measured": reason}


def int8_budget_note(int8_build: dict[str, Any], measured: float | None = None) -> str | None:
    """The line for an INT8 build that missed its drift budget, or whose held-out rows cannot show it (both kept by
    keep_failing to be timed; bench_build.evidence_record), or that optimize's speed gate would refuse as slower
    (the bench switches that gate off; bench_build.search_speed_record), else None. `measured`: the bench's own
    3/2 (INT8 over FP32 in-process at saturation), once taken. The line names the build's scheme, how fast it ran,
    and whether optimize would also refuse it as slower."""
    ship = "its rows are timed, but this INT8 build is not one optimize would ship"
    words = speed_words(int8_build, measured)
    ship = f"{words} — {ship}" if words else f": {ship}"
    unshown = int8_build.get("evidence_line")
    if int8_build.get("drift_holds") is None and unshown:
        return f"INT8's held-out rows cannot show its drift budget ({unshown}){ship}"
    if int8_build.get("drift_holds") is False:
        missed = int8_build.get("drift_line") or "see its manifest's verification"
        return f"INT8 misses its drift budget ({missed}){ship}"
    if int8_build.get("drift_holds") and "would refuse" in words:  # holds its budget, but slower than the gate allows
        return f"INT8 holds its drift budget{ship}"
    return None


def speed_words(int8_build: dict[str, Any], measured: float | None) -> str:
    """ "; its scheme, …, ran …× FP32 …": the build's scheme and speed (optimize's search, and the bench's 3/2 where
    measured), whether optimize's speed gate would refuse it as slower, and a faster scheme the search tried; "" where
    the build records none of this (an older build)."""
    from optimizer.speed import SpeedSettings

    gate = SpeedSettings().min_speedup
    scheme, searched = int8_build.get("scheme"), int8_build.get("search_speedup")
    if scheme is None and searched is None:
        return ""
    ran = [f"{searched:.2f}× FP32 in optimize's search"] if searched is not None else []
    if measured is not None and math.isfinite(measured):
        ran.append(f"{measured:.2f}× here (3/2){' — slower than FP32' if measured < 1.0 else ''}")
    words = f"; its scheme, {scheme or 'unrecorded'}, ran {' and '.join(ran)}" if ran else f"; its scheme: {scheme}"
    # the gate's verdict from the search's timing (as the gate times: paired, the request batch) where recorded
    judged = searched if searched is not None else measured
    if judged is not None and math.isfinite(judged) and judged < gate:
        words += f": below --min-speedup {gate:g}, so `quantserve optimize` would refuse it as slower"
        words += " too" if int8_build.get("drift_holds") is not True else ""
    fastest = int8_build.get("fastest_scheme") or {}
    if fastest.get("scheme") not in (None, scheme) and searched is not None and fastest.get("speedup", 0) > searched:
        held = "and held the drift budget" if fastest.get("holds") else "but missed the drift budget too"
        words += (
            f"; the fastest scheme the search tried, {fastest['scheme']}, ran {fastest['speedup']:.2f}× FP32 {held}"
        )
    return words


@dataclass
class ModelBench:
    """Everything measured for one model: its five rows, their ratios, the builds, tune, compute."""

    model: str
    description: str
    request_batch: int
    saturation_batch: int
    rows: dict[int, RowResult]
    builds: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, Any] | None = None
    seconds: float = 0.0
    macs: dict[str, int] | None = None  # multiply-adds a sample by op type, where counted
    load_by_repeat: list[list[float]] = field(default_factory=list)  # 1/5/15-min load average after each repeat
    source: dict[str, Any] = field(default_factory=dict)  # a user's model (bench --model): what was given, notes

    def ratios(self) -> dict[str, dict[str, Any]]:
        return {spec.key: ratio(spec, self.rows, self.model) for spec in RATIOS}

    def int8_measured(self) -> float | None:
        """The bench's 3/2 (INT8 over FP32 in-process at saturation), or None before it is measured."""
        value = ratio(next(s for s in RATIOS if s.key == "3/2"), self.rows, self.model)["value"]
        return value if value is not None and math.isfinite(value) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "description": self.description,
            "request_batch": self.request_batch,
            "saturation_batch": self.saturation_batch,
            "rows": [self.rows[n].to_dict() for n in sorted(self.rows)],
            "ratios": self.ratios(),
            "builds": self.builds,
            "int8_budget_note": int8_budget_note(self.builds.get("int8", {}), self.int8_measured()),
            "source": self.source,
            "tune": self.tune,
            "compute": self.compute,
            "seconds": self.seconds,
            "load_average_by_repeat": self.load_by_repeat,
        }


def save(document: dict[str, Any], out: Path) -> Path:
    """Write `bench.json` atomically (NaN written as null)."""
    out.mkdir(parents=True, exist_ok=True)
    return write_atomic(out / BENCH_FILE, json.dumps(finite_json(document), indent=2, default=str) + "\n")
