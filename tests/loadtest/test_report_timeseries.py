"""Requests second by second: an outage is a gap in the report's charts, and its failed requests are counted."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import numpy as np
import pytest

from loadtest import svg_plots
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import render, timeline_charts
from loadtest.results import LoadResult
from loadtest.timeline import Outage, bin_edges, outages, per_second

START = 1_000.0


def requests(t_from: float, t_to: float, rate: float, ok: bool, latency_ms: float = 4.0) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok) at `rate` per second over [t_from, t_to) of the window."""
    times = START + t_from + (np.arange(round((t_to - t_from) * rate)) + 0.5) / rate
    latencies = latency_ms + np.linspace(0.0, 1.0, times.size)
    return np.column_stack([times, latencies, np.full(times.size, 1.0 if ok else 0.0)])


def load_with_outage() -> np.ndarray:
    """20 req/s served, then 3 s down (20 failed/s), then served again; the window is 10.3 s."""
    return np.concatenate(
        [
            requests(0, 4, 20, ok=True),
            requests(3.5, 3.55, 20, ok=False),  # one request in flight when the server died
            requests(4, 7, 20, ok=False),
            requests(7, 10.3, 20, ok=True),
        ]
    )


def result_with(samples: np.ndarray, end: float = START + 10.3) -> LoadResult:
    timeline = per_second(samples, START, end)
    ok = samples[:, 2] > 0.5
    return LoadResult(
        model="dense",
        url="127.0.0.1:8001",
        mode="closed",
        users=2,
        window_s=end - START,
        requests=len(samples),
        failed_requests=int((~ok).sum()),
        throughput_rps=float(ok.sum() / (end - START)),
        inferences_per_s=float(ok.sum() / (end - START)),
        latency=LatencySummary.from_samples(samples[ok, 1]),
        timeline=timeline,
        outages=outages(samples, START, end),
    )


def test_seconds_count_successes_and_failures_apart() -> None:
    samples = load_with_outage()
    series = per_second(samples, START, START + 10.3)
    assert [s.t_s for s in series] == [float(t) for t in range(10)]
    assert series[-1].width_s == pytest.approx(1.3)  # the last 0.3 s joins the second before
    assert [s.ok for s in series] == [20, 20, 20, 20, 0, 0, 0, 20, 20, 26]
    assert [s.failed for s in series] == [0, 0, 0, 1, 20, 20, 20, 0, 0, 0]
    assert all(math.isnan(s.p99_ms) and math.isnan(s.p50_ms) for s in series[4:7])
    first_second = samples[(samples[:, 0] < START + 1) & (samples[:, 2] > 0.5), 1]
    assert [series[0].p50_ms, series[0].p99_ms] == pytest.approx(np.percentile(first_second, [50, 99]))
    assert series[-1].ok_per_s == pytest.approx(20.0)


def test_an_outage_runs_from_the_last_success_to_the_next() -> None:
    # successes end every 50 ms until 3.975 s and again from 7.025 s; the lone failure at 3.525 s is no outage
    found = outages(load_with_outage(), START, START + 10.3)
    assert found == [Outage(3.975, 7.025, 60)]
    assert found[0].duration_s == pytest.approx(3.05)


def test_a_quiet_second_is_no_outage_and_one_at_the_end_is() -> None:
    slow = np.concatenate([requests(0, 2, 1, ok=True), requests(4, 5, 1, ok=True)])  # 2 s without a request
    assert outages(slow, START, START + 5) == []
    down_at_end = np.concatenate([requests(0, 3, 10, ok=True), requests(3, 5.6, 10, ok=False)])
    assert outages(down_at_end, START, START + 5.6) == [Outage(2.95, 5.6, 26)]


@pytest.mark.parametrize(
    ("span", "edges"), [(0.4, [0, 0.4]), (1.0, [0, 1]), (2.3, [0, 1, 2.3]), (2.5, [0, 1, 2, 2.5]), (3.0, [0, 1, 2, 3])]
)
def test_bins_are_seconds_and_a_last_sliver_joins_the_one_before(span: float, edges: list[float]) -> None:
    assert bin_edges(START, START + span) - START == pytest.approx(edges)


def test_no_requests_and_an_empty_window() -> None:
    assert [s.ok + s.failed for s in per_second(np.zeros((0, 3)), START, START + 2)] == [0, 0]
    assert per_second(np.zeros((0, 3)), START, START) == []


def path_subpaths(path: ET.Element) -> list[list[tuple[float, float]]]:
    """The points of each `M…L…` subpath of an SVG path."""
    return [
        [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", part)]
        for part in path.attrib["d"].split("M")[1:]
    ]


def test_the_outage_is_a_gap_in_the_latency_line_over_a_shaded_band() -> None:
    throughput_svg, latency_svg = timeline_charts([LoadRun("dense", [result_with(load_with_outage())])])
    latency = ET.fromstring(latency_svg)
    p99 = latency.findall("path")[0]
    before, after = path_subpaths(p99)
    band = latency.find("rect[@class='outage']")
    assert band is not None and "60 requests failed" in (band.findtext("title") or "")
    left, right = float(band.attrib["x"]), float(band.attrib["x"]) + float(band.attrib["width"])
    assert before[-1][0] < left < right < after[0][0], "the line must stop before the outage and resume after it"
    assert len(before) == 4 and len(after) == 3
    throughput = ET.fromstring(throughput_svg)
    succeeded, failed = (path_subpaths(p)[0] for p in throughput.findall("path"))
    floor = svg_plots.HEIGHT - svg_plots.BOTTOM
    assert [y == floor for x, y in succeeded if left < x < right] == [True, True, True]
    assert all(y < floor for x, y in failed if left < x < right)


def test_report_states_the_outage_and_draws_it(tmp_path: Path) -> None:
    LoadRun("dense", [result_with(load_with_outage())]).save(tmp_path)
    md_path, html_path = render(tmp_path)
    line = "dense @ 2 users: no successful request for 3.1 s (t = 3.98–7.03 s), 60 requests failed in it"
    assert f"- Outage: {line}" in md_path.read_text()
    html = html_path.read_text()
    assert line in html and html.count('class="outage"') == 2
    assert 'aria-label="Requests/s over time — dense @ 2 users"' in html and 'aria-label="Latency over time' in html


def test_timeline_survives_json_and_old_results_still_load(tmp_path: Path) -> None:
    path = LoadRun("dense", [result_with(load_with_outage())]).save(tmp_path)
    back = LoadRun.load(path).results[0]
    assert back.outages == [Outage(3.975, 7.025, 60)] and [s.ok for s in back.timeline][3:8] == [20, 0, 0, 0, 20]
    assert math.isnan(back.timeline[5].p99_ms)
    data = json.loads(path.read_text())
    for result in data["results"]:
        del result["timeline"], result["outages"]
    path.write_text(json.dumps(data))
    old = LoadRun.load(path).results[0]
    assert old.timeline == [] and old.outages == []
    html = render(tmp_path)[1].read_text()
    assert "over time" not in html.lower() and "Outage" not in html


def test_report_states_what_the_figures_rest_on(tmp_path: Path) -> None:
    """The deadline, window-end and thin-tail lines `loadtest` prints reached neither report file."""
    samples = np.concatenate([requests(0, 2, 20, ok=True), requests(2, 2.5, 20, ok=False)])  # 40 answered, 10 failed
    result = result_with(samples, end=START + 2.5)
    result.deadline_failures, result.request_timeout_s = 10, 0.5
    result.cut_at_end, result.cut_max_ms = 6, 700.0
    result.other_models = {"heavy": 688}
    LoadRun("dense", [result]).save(tmp_path)
    md_path, html_path = render(tmp_path)
    md, html = md_path.read_text(), html_path.read_text()
    for kind, words in [
        ("Deadline", "10 requests hit the client's 0.5 s deadline"),
        ("Window end", "6 requests were still on their way when the window ended (sent up to 0.7 s before)"),
        ("Tail", "p99 rests on 40 successful requests"),
        ("Failed", "10 of 50 requests failed"),
        ("Other load", "Triton served other models during the measured window ('heavy' 688 requests"),
    ]:
        assert f"- {kind}: dense @ 2 users: {words}" in md, kind
        assert escape(f"{kind}: dense @ 2 users: {words}") in html, kind
