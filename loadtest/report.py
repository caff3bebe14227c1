"""Markdown and one self-contained HTML report, rendered from the JSON results in a folder.

Renderers only format and plot numbers already in `load-*.json` / `accuracy.json`; they never
compute a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from loadtest import svg_plots
from loadtest.ab_table import ABReport, ab_html, ab_markdown, ab_report
from loadtest.accuracy_results import ACCURACY_FILE, AccuracyReport
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LOAD_PREFIX, LoadRun
from loadtest.recorded_builds import recorded_builds
from loadtest.report_accuracy import VALUE_DIFFERENCE_TITLE, accuracy_rows, budget_line, cell, value_difference_rows
from loadtest.report_lines import (
    LENGTH_HEADER,
    LENGTH_TITLE,
    STAGE_HEADER,
    html_table,
    late_lines,
    length_rows,
    md_table,
    no_results_line,
    outage_lines,
    outage_text,
    padding_lines,
    stage_cells,
    stage_rows,
    step_lines,
    trace_lines,
)
from loadtest.report_verdict import verdict_html, verdict_markdown
from loadtest.results import LoadResult
from loadtest.served_precisions import ServedPrecisions
from loadtest.unfinished_steps import (
    RECOVERED_HEADER,
    UnfinishedStep,
    recovered_length_notes,
    recovered_length_rows,
    recovered_rows,
    unfinished_steps,
    writer_pid,
)
from loadtest.verdict import (
    Verdict,
    gather,
    load_manifest,
)
from quantserve.errors import QuantserveError
from quantserve.files import write_atomic

BREAKDOWN_SEGMENTS = ("queue", "compute input", "compute infer", "compute output")
UNFINISHED_TITLE = "INCOMPLETE: load tests that did not finish (recomputed from their raw records; not judged)"
STAGES_TITLE = "Stages (each between the moments Locust's LoadTestShape switched users; the row above blends them)"
MAX_TIMELINES = 6  # steps drawn over time (those with an outage first): a long sweep would bury the report
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222;max-width:1800px}h1{margin:0 0 .4em;font-size:1.5em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.charts{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:1em}.charts svg{width:100%;height:auto}
.verdict{border:2px solid #070;border-radius:6px;padding:.6em 1em;margin:0 0 1em}.verdict.failed{border-color:#b00}
.verdict .headline{font-size:1.25em;margin:.2em 0}.verdict table{margin:.4em 0;font-size:.9em}
.verdict td,.verdict th{text-align:left}
.verdict .machine{color:#555;margin:.2em 0}
.chart text{font-size:11px}.chart .title{font-size:13px;font-weight:bold}.axis{stroke:#333}.grid{stroke:#eee}
.fail{color:#b00;font-weight:bold}.ok{color:#070}.thin{color:#a50;font-weight:bold}.verdict.thin{border-color:#a50}
"""


@dataclass
class ReportInputs:
    """Everything found in a results folder (and the build manifests given with it)."""

    runs: list[LoadRun]
    accuracy: AccuracyReport | None
    verdict: Verdict = field(default_factory=Verdict)
    unfinished: list[UnfinishedStep] = field(default_factory=list)  # raw records no results file holds
    ab: ABReport = field(default_factory=ABReport)  # runs of one precision side by side (`loadtest.ab_table`)


def load_results(results_dir: Path | str, builds: Sequence[Path] = ()) -> ReportInputs:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise QuantserveError(f"{results_dir}: results folder not found")
    if (writer := writer_pid(results_dir)) is not None:
        raise QuantserveError(
            f"{results_dir}: a load run (pid {writer}) is still writing its results here; report it when that run ends"
        )
    runs = [LoadRun.load(p) for p in sorted(results_dir.glob(f"{LOAD_PREFIX}*.json"))]
    accuracy_path = results_dir / ACCURACY_FILE
    accuracy = AccuracyReport.load(accuracy_path) if accuracy_path.is_file() else None
    unfinished = unfinished_steps(results_dir, runs)
    if not runs and accuracy is None and not any(step.window_s is not None for step in unfinished):
        raise QuantserveError(
            unfinished[0].summary()
            if unfinished
            else no_results_line(results_dir, f"{LOAD_PREFIX}*.json", ACCURACY_FILE)
        )
    # none given: those the folder records (the demo's), so a re-render keeps the in-process speed its verdict had
    check_builds_served(results_dir, builds, runs, accuracy)
    manifests = [load_manifest(Path(b)) for b in (builds or recorded_builds(results_dir))]
    verdict = gather(results_dir, runs, accuracy, manifests)
    ab = ab_report(runs, ServedPrecisions.of(runs, accuracy).precision)
    return ReportInputs(runs, accuracy, verdict, unfinished, ab)


def check_builds_served(
    results_dir: Path, builds: Sequence[Path], runs: list[LoadRun], accuracy: AccuracyReport | None
) -> None:
    """Refuse a --build of another model than the one the folder's runs served: `report reports/digits --build
    build/text_int8` took the text encoder's in-process speed as the digits verdict ("FAIL · 1.10× in-process") and
    exited 1 (session 40). Told by the source model's identity deploy records in the served config and a build's
    FP32 reference; where either is unrecorded, nothing can be told and nothing is refused."""
    from serving.deploy import source_identity

    served = {run.identity.source for run in runs if run.identity and run.identity.source}
    served |= {v.source for v in (accuracy.variants if accuracy else []) if v.source}
    if not served:
        return
    for build in builds:
        folder = Path(build) if Path(build).is_dir() else Path(build).parent
        if not (folder / "manifest.json").is_file():
            continue  # load_manifest names the missing file
        source = source_identity(folder, load_manifest(folder).get("files") or {})
        if source is not None and source not in served:
            theirs = ", ".join(sorted(s[:19] for s in served))
            raise QuantserveError(
                f"--build {build}: a build of another model than {results_dir}'s runs served (its source model "
                f"{source[:19]}…, theirs {theirs}…): its in-process speed says nothing of them; give the build "
                "they were deployed from"
            )


def render(results_dir: Path | str, builds: Sequence[Path] = ()) -> tuple[Path, Path]:
    """Write `report.md` and `report.html` into `results_dir`; returns their paths.

    `builds`: build folders (or manifest.json files) whose recorded in-process speed joins the verdict.
    """
    inputs = load_results(results_dir, builds)
    md_path, html_path = Path(results_dir) / "report.md", Path(results_dir) / "report.html"
    write_atomic(md_path, render_markdown(inputs))
    write_atomic(html_path, render_html(inputs))
    return md_path, html_path


def _interrupted_lines(runs: list[LoadRun]) -> list[str]:
    """Each run stopped by Ctrl-C or SIGTERM: when, in which step, and what of it the figures below hold."""
    return [f"{run.name}: {run.interrupted.summary()}" for run in runs if run.interrupted]


def _load_rows(runs: list[LoadRun]) -> tuple[list[str], list[list[str]]]:
    header = ["step", "requests", "failed", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "mean ms", "avg batch"]
    header += ["queue µs", "infer µs", "utilization"]
    rows = []
    for run in runs:
        for r in run.results:
            server = r.server_figures
            rows.append(
                [
                    r.label,
                    str(r.requests),
                    str(r.failed_requests),
                    cell(r.throughput_rps, 1),
                    cell(r.latency.p50_ms),
                    cell(r.latency.p90_ms),
                    cell(r.latency.p95_ms),
                    cell(r.latency.p99_ms),
                    cell(r.latency.mean_ms),
                    cell(r.avg_batch_size),
                    cell(server.avg_queue_us, 0) if server else "–",
                    cell(server.avg_compute_infer_us, 0) if server else "–",
                    _utilization_text(r),
                ]
            )
    return header, rows


def _busy_lines(runs: list[LoadRun]) -> list[tuple[str, str]]:
    """A line per step during which other processes took over a quarter of the machine's cores."""
    notes = [r.utilization.busy_note(r.label) for run in runs for r in run.results if r.utilization]
    return [("Busy machine", note) for note in notes if note]


def _utilization_text(result: LoadResult) -> str:
    u = result.utilization
    if u is None or result.server_restarted:  # the samples followed a process that stopped partway
        return "–"
    machine = ""
    if u.others_share is not None:
        machine = (
            f" · machine CPU {cell(u.machine_cpu_pct_mean, 0)}% of {u.cpu_count} cores, others {u.others_share:.0%}"
        )
    if u.source == "nvml":
        memory, power = cell(u.gpu_memory_used_mb_max, 0), cell(u.gpu_power_w_mean, 0)
        return f"GPU {cell(u.gpu_util_pct_mean, 0)}% · {memory} MB · {power} W{machine}"
    return f"no GPU; server CPU {cell(u.process_cpu_pct_mean, 0)}% · RSS {cell(u.process_rss_mb_max, 0)} MB{machine}"


def render_markdown(inputs: ReportInputs) -> str:
    interrupted = [f"- **Interrupted:** {line}" for line in _interrupted_lines(inputs.runs)]
    interrupted += [f"- **INCOMPLETE:** {step.summary()}" for step in inputs.unfinished]
    parts = ["# quantserve load test and evaluation report", "", *interrupted, *([""] if interrupted else [])]
    parts += verdict_markdown(inputs.verdict)
    if recovered_rows(inputs.unfinished):
        parts += [f"## {UNFINISHED_TITLE}", "", md_table(RECOVERED_HEADER, recovered_rows(inputs.unfinished)), ""]
        stages = [[s.label, *stage_cells(stage)] for s in inputs.unfinished for stage in s.stages]
        parts += [md_table(STAGE_HEADER, stages), ""] if stages else []
        recovered = [f"- Lengths: {note}" for note in recovered_length_notes(inputs.unfinished)]
        parts += [*recovered, ""] if recovered else []
        parts += [] if inputs.runs else _lengths_markdown(inputs)
    if inputs.runs:
        parts += ["## Load (client latency, Triton server-side counters over the measured window)", ""]
        parts += [md_table(*_load_rows(inputs.runs)), ""]
        stages = stage_rows(inputs.runs)
        parts += [f"### {STAGES_TITLE}", "", md_table(STAGE_HEADER, stages), ""] if stages else []
        padding = padding_lines(inputs.runs)
        parts += [*(f"- Padding: {line}" for line in padding), ""] if padding else []
        parts += _lengths_markdown(inputs)
        parts += [*(f"- Trace: {line}" for line in trace_lines(inputs.runs)), ""] if trace_lines(inputs.runs) else []
        late = late_lines(inputs.runs)
        parts += [*(f"- Sent late: {line}" for line in late), ""] if late else []
        outages = outage_lines(inputs.runs)
        parts += [*(f"- Outage: {line}" for line in outages), ""] if outages else []
        server = [*step_lines(inputs.runs), *_busy_lines(inputs.runs)]
        parts += [*(f"- {kind}: {line}" for kind, line in server), ""] if server else []
        notes = {r.utilization.note for run in inputs.runs for r in run.results if r.utilization}
        parts += [f"Utilization: {note}." for note in sorted(notes)] + [""]
    parts += ab_markdown(inputs.ab)
    if inputs.accuracy is not None:
        parts += [f"## Accuracy drift vs `{inputs.accuracy.reference}` (output `{inputs.accuracy.output}`)", ""]
        parts += [md_table(*accuracy_rows(inputs.accuracy)), "", budget_line(inputs.accuracy), ""]
        values = value_difference_rows(inputs.accuracy)  # a regression's years, an angle's radians (session 63)
        parts += [f"### {VALUE_DIFFERENCE_TITLE}", "", md_table(*values), ""] if values[1] else []
    return "\n".join(parts)


def _length_rows(inputs: ReportInputs) -> list[list[str]]:
    """The "Per request length" rows of the finished steps, then of those recovered from raw records."""
    return [*length_rows(inputs.runs), *recovered_length_rows(inputs.unfinished)]


def _lengths_markdown(inputs: ReportInputs) -> list[str]:
    lengths = _length_rows(inputs)
    return [f"### {LENGTH_TITLE}", "", md_table(LENGTH_HEADER, lengths), ""] if lengths else []


def _lengths_html(inputs: ReportInputs) -> list[str]:
    lengths = _length_rows(inputs)
    return [f"<h3>{escape(LENGTH_TITLE)}</h3>", html_table(LENGTH_HEADER, lengths)] if lengths else []


def charts(runs: list[LoadRun]) -> list[str]:
    """The five load charts as inline SVG (the concurrency charts from closed-loop steps only)."""
    closed = [(run.model, [r for r in run.results if r.mode == ClosedLoop.mode]) for run in runs]
    closed = [(model, steps) for model, steps in closed if steps]
    cdf = [(r.label, r.cdf) for run in runs for r in run.results if r.cdf]
    cdf = cdf if len(cdf) <= len(svg_plots.PALETTE) else [(run.name, run.results[-1].cdf) for run in runs]
    return [
        svg_plots.line_chart("Latency CDF", cdf, "latency (ms)", "fraction of requests", markers=False),
        svg_plots.line_chart(
            "Throughput vs concurrency",
            [(m, [(r.users, r.throughput_rps) for r in rs]) for m, rs in closed],
            "users",
            "req/s",
        ),
        svg_plots.line_chart(
            "p99 latency vs concurrency",
            [(m, [(r.users, r.latency.p99_ms) for r in rs]) for m, rs in closed],
            "users",
            "ms",
        ),
        svg_plots.line_chart(
            "Latency–throughput",
            [(run.name, sorted((r.throughput_rps, r.latency.p99_ms) for r in run.results)) for run in runs],
            "throughput (req/s)",
            "p99 latency (ms)",
        ),
        svg_plots.stacked_bars("Triton server-side time per request", _breakdown_rows(runs), BREAKDOWN_SEGMENTS, "µs"),
    ]


def timeline_charts(runs: list[LoadRun]) -> list[str]:
    """Throughput and latency of each step second by second, outages shaded; a second with no success is a gap."""
    steps = [r for run in runs for r in run.results if r.timeline]
    steps = sorted(steps, key=lambda r: not r.outages)[:MAX_TIMELINES]
    return [chart for r in steps for chart in _step_over_time(r)]


def _step_over_time(r: LoadResult) -> list[str]:
    middles = [second.t_s + second.width_s / 2 for second in r.timeline]
    bands = [(o.start_s, o.end_s, outage_text(o)) for o in r.outages]
    throughput = [
        ("succeeded", list(zip(middles, (s.ok_per_s for s in r.timeline), strict=True))),
        ("failed", list(zip(middles, (s.failed_per_s for s in r.timeline), strict=True))),
    ]
    latency = [
        ("p99", list(zip(middles, (s.p99_ms for s in r.timeline), strict=True))),
        ("p50", list(zip(middles, (s.p50_ms for s in r.timeline), strict=True))),
    ]
    return [
        svg_plots.time_chart(f"Requests/s over time — {r.label}", throughput, "seconds", "req/s", bands),
        svg_plots.time_chart(f"Latency over time — {r.label}", latency, "seconds", "ms", bands),
    ]


def _breakdown_rows(runs: list[LoadRun]) -> list[tuple[str, list[float]]]:
    rows = []
    for run in runs:
        for r in run.results:
            if r.server_figures is not None:
                s = r.server_figures
                values = [s.avg_queue_us, s.avg_compute_input_us, s.avg_compute_infer_us, s.avg_compute_output_us]
                rows.append((r.label, values))
    return rows[:12]


def render_html(inputs: ReportInputs) -> str:
    body = ["<h1>quantserve load test and evaluation report</h1>"]
    body += [f'<p class="fail">Interrupted: {escape(line)}</p>' for line in _interrupted_lines(inputs.runs)]
    body += [f'<p class="fail">INCOMPLETE: {escape(step.summary())}</p>' for step in inputs.unfinished]
    body.append(verdict_html(inputs.verdict))
    if recovered_rows(inputs.unfinished):
        body += [f'<h2 class="fail">{escape(UNFINISHED_TITLE)}</h2>']
        body.append(html_table(RECOVERED_HEADER, recovered_rows(inputs.unfinished)))
        stages = [[s.label, *stage_cells(stage)] for s in inputs.unfinished for stage in s.stages]
        body += [html_table(STAGE_HEADER, stages)] if stages else []
        body += [f'<p class="fail">Lengths: {escape(note)}</p>' for note in recovered_length_notes(inputs.unfinished)]
        body += [] if inputs.runs else _lengths_html(inputs)
    if inputs.runs:
        body.append("<h2>Load</h2>")
        body.append('<div class="charts">' + "\n".join(charts(inputs.runs)) + "</div>")
        body.append(html_table(*_load_rows(inputs.runs)))
        if stage_rows(inputs.runs):
            body += [f"<h3>{escape(STAGES_TITLE)}</h3>", html_table(STAGE_HEADER, stage_rows(inputs.runs))]
        body += [f"<p>Padding: {escape(line)}</p>" for line in padding_lines(inputs.runs)]
        body += _lengths_html(inputs)
        body += [f"<p>Trace: {escape(line)}</p>" for line in trace_lines(inputs.runs)]
        body += [f'<p class="fail">Sent late: {escape(line)}</p>' for line in late_lines(inputs.runs)]
        body += [f'<p class="fail">Outage: {escape(line)}</p>' for line in outage_lines(inputs.runs)]
        lines = [*step_lines(inputs.runs), *_busy_lines(inputs.runs)]
        body += [f'<p class="fail">{kind}: {escape(line)}</p>' for kind, line in lines]
        over_time = timeline_charts(inputs.runs)
        if over_time:
            body.append("<h3>Over time</h3>")
            body.append('<div class="charts">' + "\n".join(over_time) + "</div>")
        notes = sorted({r.utilization.note for run in inputs.runs for r in run.results if r.utilization})
        body += [f"<p>Utilization: {escape(note)}.</p>" for note in notes]
    body += ab_html(inputs.ab)
    if inputs.accuracy is not None:
        report = inputs.accuracy
        body.append(f"<h2>Accuracy drift vs {escape(report.reference)} (output {escape(report.output)})</h2>")
        body.append(html_table(*accuracy_rows(report)))
        css = "fail" if report.over_budget else "ok"
        body.append(f'<p class="{css}">{escape(budget_line(report))}</p>')
        values = value_difference_rows(report)
        body += [f"<h3>{escape(VALUE_DIFFERENCE_TITLE)}</h3>", html_table(*values)] if values[1] else []
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>quantserve report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
