"""Small inline-SVG charts (lines with markers, lines over time, stacked bars) for the self-contained HTML report.

Pure string building from numbers already measured: no plotting library, no external assets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 600, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 190, 34, 46

OUTAGE_FILL = "#f4c7c3"

Series = tuple[str, Sequence[tuple[float, float]]]
Band = tuple[float, float, str]  # x from, x to, what it marks


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(start + len(ticks) * step, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.2e}"


class _Frame:
    """Maps data coordinates to pixels inside the plot area."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], y_from_zero: bool = True) -> None:
        # Users, rates, throughput and latency are all ≥ 0: axes from 0 keep one-point series readable.
        self.x_ticks = nice_ticks(min(0.0, min(xs)), max(xs))
        self.y_ticks = nice_ticks(min(0.0, min(ys)) if y_from_zero else min(ys), max(ys))
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / ((self.x1 - self.x0) or 1.0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / ((self.y1 - self.y0) or 1.0) * (HEIGHT - TOP - BOTTOM)


def _axes(frame: _Frame, title: str, x_label: str, y_label: str) -> list[str]:
    parts = [
        f'<text x="{WIDTH / 2:.0f}" y="20" text-anchor="middle" class="title">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]
    for x in frame.x_ticks:
        px = frame.px(x)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" class="grid"/>')
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_fmt(x)}</text>')
    for y in frame.y_ticks:
        py = frame.py(y)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return parts


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        y = TOP + 8 + i * 18
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{y - 8}" width="12" height="10" fill="{color}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 27}" y="{y + 1}" class="legend">{escape(name[:28])}</text>')
    return parts


def _svg(parts: list[str], label: str) -> str:
    body = "\n".join(parts)
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">\n{body}\n</svg>'
    )


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str, markers: bool = True) -> str:
    """One polyline per series (with a circle per point when `markers`), legend on the right."""
    points = [(x, y) for _, pts in series for x, y in pts if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return f'<p class="empty">{escape(title)}: no data</p>'
    frame = _Frame([p[0] for p in points], [p[1] for p in points])
    parts = _axes(frame, title, x_label, y_label)
    for i, (_, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        clean = [(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
        if not clean:
            continue
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{frame.px(x):.1f},{frame.py(y):.1f}" for j, (x, y) in enumerate(clean)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if markers:
            parts += [
                f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="3.5" fill="{color}"/>' for x, y in clean
            ]
    parts += _legend([name for name, _ in series])
    return _svg(parts, title)


def time_chart(title: str, series: Sequence[Series], x_label: str, y_label: str, bands: Sequence[Band] = ()) -> str:
    """Lines over time that break where a value is missing (NaN), over shaded `bands` (outages).

    A line never bridges a missing point, so seconds without a measurement show as a gap.
    """
    points = [(x, y) for _, pts in series for x, y in pts if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return f'<p class="empty">{escape(title)}: no data</p>'
    xs = [p[0] for p in points] + [x for band in bands for x in band[:2]]
    frame = _Frame(xs, [p[1] for p in points])
    parts = _axes(frame, title, x_label, y_label)
    for x0, x1, label in bands:
        left, right = frame.px(x0), frame.px(x1)
        parts.append(
            f'<rect class="outage" x="{left:.1f}" y="{TOP}" width="{right - left:.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}" fill="{OUTAGE_FILL}" fill-opacity="0.7">'
            f"<title>{escape(label)}</title></rect>"
        )
    for i, (_, pts) in enumerate(series):
        path = broken_path(frame, pts)
        if path:
            color = PALETTE[i % len(PALETTE)]
            parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    parts += _legend([name for name, _ in series])
    return _svg(parts, title)


def broken_path(frame: _Frame, points: Sequence[tuple[float, float]]) -> str:
    """SVG path data: a new subpath (`M`) after every missing value, `L` between present neighbours."""
    commands, pen_down = [], False
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{frame.px(x):.1f},{frame.py(y):.1f}")
        pen_down = True
    return " ".join(commands)


def stacked_bars(title: str, rows: Sequence[tuple[str, Sequence[float]]], segments: Sequence[str], unit: str) -> str:
    """Horizontal bars, one per row, each split into `segments` (values in `unit`)."""
    totals = [sum(v for v in values if math.isfinite(v)) for _, values in rows]
    if not rows or max(totals) <= 0:
        return f'<p class="empty">{escape(title)}: no data</p>'
    ticks = nice_ticks(0.0, max(totals))
    scale = (WIDTH - LEFT - RIGHT - 80) / ticks[-1]
    left = LEFT + 80
    bar = min(28.0, (HEIGHT - TOP - BOTTOM) / len(rows) - 6)
    parts = [f'<text x="{WIDTH / 2:.0f}" y="20" text-anchor="middle" class="title">{escape(title)}</text>']
    for tick in ticks:
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_fmt(tick)}</text>')
    parts.append(
        f'<text x="{left + (WIDTH - RIGHT - left) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(unit)}</text>'
    )
    for i, (label, values) in enumerate(rows):
        y = TOP + 4 + i * (bar + 6)
        label_y = y + bar / 2 + 4
        parts.append(
            f'<text x="{left - 4}" y="{label_y:.1f}" text-anchor="end" class="legend">{escape(label[:24])}</text>'
        )
        x = float(left)
        for j, value in enumerate(values):
            width = max(0.0, value * scale) if math.isfinite(value) else 0.0
            color = PALETTE[j % len(PALETTE)]
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{bar:.1f}" fill="{color}"/>')
            x += width
    parts += _legend(segments)
    return _svg(parts, title)
