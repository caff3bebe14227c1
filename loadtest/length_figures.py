"""A step's figures per request length, where its requests were cut to their real length (`request_data.
trim_padding`) and went at several: one pooled row hid that short requests batched with long ones waited as long
(session 57: a sequence model, 264 requests of 32 real steps beside 248 of 1024 under dynamic batching: p50 35.6 vs
36.1 ms, p99 112 vs 114 ms; 5.2 ms alone), and nothing said the lengths were mixed.

Each answered request's length comes from its raw record (`recording_files.LENGTH_COLUMN`); a few lengths are shown
one by one, many in up to `MAX_RANGES` ranges cut at the quartiles of the requests' lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loadtest.percentiles import percentile
from loadtest.recording_files import LENGTH_COLUMN

MAX_RANGES = 4  # more distinct lengths than this are grouped into as many ranges (quartiles of the lengths)
# The note on short requests waiting as long as long ones: the shortest range's p50 at least this share of the
# longest's, its lengths at most SHORT_SHARE of the longest range's.
SIMILAR_WAIT = 0.75
SHORT_SHARE = 0.25


@dataclass
class LengthRange:
    """The answered requests of lengths `low` to `high` (positions on axis 1, as sent): how many, their share of
    the step's answered requests, and their latency."""

    low: int
    high: int
    requests: int
    share: float
    p50_ms: float
    p99_ms: float

    @property
    def label(self) -> str:
        """The lengths as a cell: "32" for one length, "33-64" for a range."""
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    def cells(self) -> list[str]:
        """Its cells in the report's table after the step: length, requests, share, p50, p99."""
        return [self.label, str(self.requests), f"{self.share:.0%}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}"]


@dataclass
class LengthFigures:
    """A step's answered requests by length: how many distinct lengths they went at, and the ranges shown; the input
    whose cut they count (`request_data.cut_inputs`' first) and the other inputs that cut the requests, whose lengths
    they do not (None and []: not known, a record recovered from raw files or an older one)."""

    lengths: int
    ranges: list[LengthRange] = field(default_factory=list)
    length_input: str | None = None
    not_counted: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthFigures:
        ranges = [LengthRange(**part) for part in data["ranges"]]
        return cls(int(data["lengths"]), ranges, data.get("length_input"), list(data.get("not_counted") or []))

    def line(self, step: str) -> str:
        """One line: the lengths, the input whose cut they are, and each one's (or range's) share, p50 and p99. With
        two length inputs (nagisa's `char_len` and `word_len`) the line had not said whose positions it counted."""
        grouped = "" if self.lengths == len(self.ranges) else f", in {len(self.ranges)} ranges"
        parts = "; ".join(
            f"{r.label}: {r.share:.0%}, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms" for r in self.ranges
        )
        by = f", as cut by input '{self.length_input}'" if self.length_input else ""
        return (
            f"{step}: requests went at {self.lengths} lengths{by} (positions as sent{grouped}{self._others()}): {parts}"
        )

    def _others(self) -> str:
        """`; not the lengths input 'word_len' cut`: the other inputs that cut the requests, where any did."""
        if not self.not_counted:
            return ""
        inputs = "inputs" if len(self.not_counted) > 1 else "input"
        return f"; not the lengths {inputs} {', '.join(repr(name) for name in self.not_counted)} cut"

    def batched_note(self, step: str) -> str | None:
        """A note where the shortest requests waited about as long as the longest (`SIMILAR_WAIT`) though they are a
        quarter of their length or less (`SHORT_SHARE`): batched with long ones, they waited for them."""
        if len(self.ranges) < 2:
            return None
        short, long = self.ranges[0], self.ranges[-1]
        if short.high > SHORT_SHARE * long.low or not short.p50_ms >= SIMILAR_WAIT * long.p50_ms:
            return None
        return (
            f"{step}: requests of {short.label} positions waited about as long as those of {long.label} (p50 "
            f"{short.p50_ms:.1f} vs {long.p50_ms:.1f} ms, p99 {short.p99_ms:.1f} vs {long.p99_ms:.1f} ms): most "
            "likely batched with long ones, and a batch is answered as a whole, padded up to (or run beside) its "
            "longest request. Triton's ragged batching is what lets them share a batch, so it does not help here; "
            "what may: a separate model (or deployment) per range of lengths, so short requests batch with short "
            "ones, or fewer preferred batch sizes or a shorter max queue delay, so a short request waits on fewer "
            "long ones (at some cost in throughput). A run of short requests alone says what they cost by themselves"
        )


def length_figures(samples: np.ndarray, cut_by: Sequence[str] = ()) -> LengthFigures | None:
    """The answered requests of `samples` (raw rows, `recording_files.read_latencies`) by the length they were sent
    at; None where they went at fewer than 2 lengths (or uncut: length 0, or a record from before it was kept).
    `cut_by`: the inputs that cut the requests (`request_data.cut_inputs`), the first the one whose lengths were
    recorded (`request_data.sent_lengths`)."""
    if samples.ndim != 2 or samples.shape[1] <= LENGTH_COLUMN or not len(samples):
        return None
    answered = samples[(samples[:, 2] > 0.5) & (samples[:, LENGTH_COLUMN] > 0)]
    lengths, latencies = answered[:, LENGTH_COLUMN].astype(np.int64), answered[:, 1]
    distinct = np.unique(lengths)
    if distinct.size < 2:
        return None
    ranges = []
    low = 0
    for high in range_ends(lengths):
        inside = (lengths > low) & (lengths <= high)
        kept = lengths[inside]
        share = float(inside.sum() / len(lengths))
        p50, p99 = percentile(latencies[inside], 50.0), percentile(latencies[inside], 99.0)
        ranges.append(LengthRange(int(kept.min()), int(kept.max()), int(inside.sum()), share, p50, p99))
        low = high
    return LengthFigures(int(distinct.size), ranges, cut_by[0] if cut_by else None, list(cut_by[1:]))


def range_ends(lengths: np.ndarray) -> list[int]:
    """The longest length of each range, ascending: every distinct length where there are `MAX_RANGES` or fewer,
    else the lengths at the requests' quartiles (fewer ranges where most requests share a length) and the longest."""
    distinct = np.unique(lengths)
    if distinct.size <= MAX_RANGES:
        return [int(n) for n in distinct]
    cuts = np.quantile(lengths, np.arange(1, MAX_RANGES) / MAX_RANGES, method="lower")
    return sorted({int(n) for n in cuts} | {int(distinct[-1])})
