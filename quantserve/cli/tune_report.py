"""`tune.json` and `tune.html`: the trials as data, then a table and a throughput-vs-p99 scatter drawn from it.

The HTML is rendered from the JSON document only (it computes no measurement); the Pareto front
(no other trial has more throughput at a lower or equal p99) is a pure function tested on its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from loadtest.svg_plots import PALETTE, nice_ticks
from quantserve.cli.tables import finite_json
from quantserve.cli.tune_lines import (
    config_label,
    cut_confirmation_line,
    deployed_line,
    failed_cell,
    outcome_lines,
    search_figure,
)
from quantserve.files import write_atomic

JSON_NAME, HTML_NAME = "tune.json", "tune.html"
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 360, 64, 24, 34, 46
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222;max-width:1400px}h1{font-size:1.5em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:nth-child(2),td:nth-child(2){text-align:left}tr.best{background:#e6f4e6}tr.baseline{background:#f3f3f3}
tr.kept td:nth-child(2){font-weight:bold}
svg text{font-size:11px}svg .title{font-size:13px;font-weight:bold}.axis{stroke:#333}.grid{stroke:#eee}
"""
COLUMNS = (
    "#",
    "config",
    "req/s",
    "p50 ms",
    "p99 ms",
    "goodput/s",
    "failed",
    "pruned",
    "front",
    "others' CPU",
    "outside Triton",
)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (throughput, p99) points no other point dominates (≥ throughput and ≤ p99, one strictly).

    Points with a non-finite coordinate are never on the front.
    """
    finite = [i for i, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)]

    def dominated(i: int) -> bool:
        x, y = points[i]
        return any(points[j][0] >= x and points[j][1] <= y and (points[j][0] > x or points[j][1] < y) for j in finite)

    return [i for i in finite if not dominated(i)]


def write_report(result: Any, out: Path) -> tuple[Path, Path]:
    """Write `tune.json` (result.to_json()) and the HTML rendered from it into `out`, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    document = result.to_json()
    json_path = write_atomic(out / JSON_NAME, json.dumps(finite_json(document), indent=2) + "\n")
    html_path = write_atomic(out / HTML_NAME, render_html(document))
    return json_path, html_path


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def render_html(document: dict[str, Any]) -> str:
    """The whole page: headline, the scatter, the trials table, settings and machine."""
    trials = document["trials"]
    points = [(_num(t["throughput_rps"]), _num(t["p99_ms"])) for t in trials]
    front = set(pareto_front(points))
    # the model's name as asked (--name): taken from `deployed`, a run that deployed nothing had none
    name = document["settings"].get("name") or (document.get("deployed") or {}).get("name", "")
    body = [f"<h1>quantserve tune: {escape(name)}</h1>", _headline(document)]
    if document["settings"].get("trace_pass_note"):  # a trace's pass longer than a window (`tune_trace`)
        body.append(f"<p>Note: {escape(document['settings']['trace_pass_note'])}.</p>")
    body.append(scatter_svg(trials, front, _num(document["settings"].get("slo_p99_ms"))))
    body.append("<p>Filled: measured in two windows; hollow: pruned after one; green: the Pareto front.</p>")
    body.append(trials_table(document, front))
    body.append(f"<p>{escape(table_legend(document))}</p>")
    body.append(f"<h2>Settings</h2><pre>{escape(json.dumps(document['settings'], indent=2))}</pre>")
    body.append(f"<h2>Machine</h2><pre>{escape(json.dumps(document.get('machine', {}), indent=2))}</pre>")
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>quantserve tune</title><style>{STYLE}</style>"
    return head + "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"


def _headline(document: dict[str, Any]) -> str:
    """What the terminal says after its trials table (`tune_lines`), with where the best's figures come from."""
    base, search = document["baseline"], document["search"]
    if document.get("failure"):  # no trial served a request: no best, gain or SLO to speak of
        spent = f"{search['trials']} trial(s) in {_num(search['seconds']):.0f} s"
        return f"<p>Failed: {escape(document['failure'])}<br>{spent}</p>"
    interrupted = interrupted_summary(document)
    lines = [interrupted] if interrupted else []
    first, *rest = outcome_lines(document)
    lines += [f"{first}; {_source(document)}", f"baseline (no batching, one instance): {_figures(base)}", *rest]
    if not interrupted:  # else its summary says what is deployed
        lines.append(deployed_line(document))
    return "<p>" + "<br>".join(escape(line[:1].upper() + line[1:]) for line in lines) + "</p>"


def _figures(trial: dict[str, Any]) -> str:
    return f"{_num(trial['goodput_rps']):.1f} good req/s, p99 {_num(trial['p99_ms']):.2f} ms"


def _source(document: dict[str, Any]) -> str:
    """Whether the best's figures are the confirmation's, and what the search saw of the same configuration."""
    if not document["search"].get("confirmed"):
        return "the search's own figures: not confirmed"
    seen = search_figure(document)
    return "confirmed after the search" + (f"; the search saw {_figures(seen)}" if seen else "")


def interrupted_summary(document: dict[str, Any]) -> str:
    """tune.html's line for an interrupted run ("" where it ran to its end)."""
    if not document.get("interrupted"):
        return ""
    what = "the winner deployed, not re-measured" if document.get("deployed") else "nothing deployed"
    cut = cut_confirmation_line(document)  # the confirmation's runs it cut: kept, never the claim
    line = f"Interrupted during {document.get('interrupted_during', '')}: {what}; the trials measured up to then."
    return f"{line} {cut[:1].upper()}{cut[1:]}." if cut else line


def row_class(trial: dict[str, Any], document: dict[str, Any]) -> str:
    """A trials table row's CSS class: "best" for the winner's alone, "baseline" for the naive baseline's, "baseline
    kept" where the baseline itself stands as the result (no trial beat it). The kept baseline's row was "best",
    coloured as a winner where the headline said "kept, though it misses the SLO" (session 57)."""
    best, base = document["best"]["config"], document["baseline"]["config"]
    if trial["config"] == base:
        return "baseline kept" if best == base and not document.get("failure") else "baseline"
    return "best" if trial["config"] == best else ""


def table_legend(document: dict[str, Any]) -> str:
    """The words under the trials table for its row colours (`row_class`)."""
    if document.get("failure"):
        return "Grey row: the naive baseline (no trial served a request)."
    if document["best"]["config"] == document["baseline"]["config"]:
        return "Grey row, bold: the naive baseline, kept: no trial beat it (no row is green)."
    return "Green row: the winner; grey row: the naive baseline."


def trials_table(document: dict[str, Any], front: set[int]) -> str:
    rows = []
    for index, trial in enumerate(document["trials"]):
        kind = row_class(trial, document)
        cells = [
            str(index + 1),
            escape(config_label(trial["config"]))
            + (f" ({escape(trial['error'])})" if trial.get("error") else "")
            + (" (interrupted: partial)" if trial.get("interrupted") else "")
            + "".join(f" ({escape(note)})" for note in trial.get("server_restarts") or ()),
            *(f"{_num(trial[k]):.2f}" for k in ("throughput_rps", "p50_ms", "p99_ms", "goodput_rps")),
            failed_cell(trial),
            "yes" if trial["pruned"] else "",
            "●" if index in front else "",
            f"{trial['others_share']:.0%}" if trial.get("others_share") is not None else "",
            # the share of its latency the client spent (`Trial.outside_share`): closed loop, with Triton's counters
            f"{trial['outside_share']:.0%}" if trial.get("outside_share") is not None else "",
        ]
        rows.append(f"<tr class='{kind}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


SLO_SHOWN_WITHIN = 3.0  # the SLO line is drawn where it is at most this many times the slowest trial's p99


def scatter_svg(trials: Sequence[dict[str, Any]], front: set[int], slo_ms: float) -> str:
    """Throughput (x) against p99 (y) per trial; the Pareto front joined by a line; the SLO as a dashed line."""
    points = [(_num(t["throughput_rps"]), _num(t["p99_ms"])) for t in trials]
    shown = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    xs = [p[0] for p in shown] or [1.0]
    # an SLO far above every trial (--slo-p99-ms 100000) scaled the axis to it and laid every point on the x axis
    # (session 41): drawn where it is within SLO_SHOWN_WITHIN of the slowest trial's p99, else named at the top
    slowest = max((p[1] for p in shown), default=0.0)
    slo_drawn = math.isfinite(slo_ms) and (not shown or slo_ms <= SLO_SHOWN_WITHIN * slowest)
    ys = [p[1] for p in shown] + ([slo_ms] if slo_drawn else [])
    x_ticks, y_ticks = nice_ticks(0.0, max(xs)), nice_ticks(0.0, max(ys or [1.0]))

    def px(x: float) -> float:
        return LEFT + x / (x_ticks[-1] or 1.0) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - y / (y_ticks[-1] or 1.0) * (HEIGHT - TOP - BOTTOM)

    parts = [
        f'<text x="{WIDTH / 2:.0f}" y="20" text-anchor="middle" class="title">throughput vs p99 per trial</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">throughput (req/s)</text>',
        f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">p99 latency (ms)</text>',
    ]
    parts += [f'<text x="{px(t):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{t:g}</text>' for t in x_ticks]
    parts += [f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>' for t in y_ticks]
    if slo_drawn:
        parts.append(
            f'<line x1="{LEFT}" y1="{py(slo_ms):.1f}" x2="{WIDTH - RIGHT}" y2="{py(slo_ms):.1f}" '
            f'stroke="{PALETTE[1]}" stroke-dasharray="5,4"/><text x="{LEFT + 4}" y="{py(slo_ms) - 4:.1f}" '
            f'fill="{PALETTE[1]}">SLO {slo_ms:g} ms</text>'
        )
    elif math.isfinite(slo_ms):
        parts.append(
            f'<text x="{LEFT + 4}" y="{TOP + 12}" fill="{PALETTE[1]}">SLO {slo_ms:g} ms: above the chart '
            f"(every trial's p99 is at most {slowest:.3g} ms)</text>"
        )
    ordered = sorted((points[i] for i in front), key=lambda p: p[0])
    if len(ordered) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ordered)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="{PALETTE[2]}" stroke-width="1.5"/>')
    for index, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        on_front = index in front
        colour = PALETTE[2] if on_front else PALETTE[0]
        fill = colour if not trials[index]["pruned"] else "none"
        label = escape(config_label(trials[index]["config"]))
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{6 if on_front else 4}" fill="{fill}" stroke="{colour}">'
            f"<title>#{index + 1} {label}</title></circle>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" role="img" '
        f'aria-label="throughput vs p99">{"".join(parts)}</svg>'
    )
