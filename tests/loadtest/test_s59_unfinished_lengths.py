"""A step recovered from its raw records (killed before it wrote a results file, `unfinished_steps`) has its figures
per request length rendered in the report's "Per request length" table beside the finished steps', marked as
recovered with the number of requests they rest on: session 58 computed them (`UnfinishedStep.lengths`) but the
table showed only finished steps, and none at all where no step had finished."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadtest.length_figures import length_figures
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import LENGTH_COLUMN, SAMPLE_COLUMNS, WINDOW_FILE
from loadtest.report import render
from loadtest.results import LoadResult

START = 1_000.0
RECOVERED = "seq-u4 (INCOMPLETE, recovered from 100 answered requests)"


def _rows(lengths: list[int], latencies_ms: list[float]) -> np.ndarray:
    rows = np.zeros((len(lengths), SAMPLE_COLUMNS))
    rows[:, 0] = START + np.linspace(0.1, 3.9, len(lengths))
    rows[:, 1], rows[:, 2], rows[:, LENGTH_COLUMN] = latencies_ms, 1.0, lengths
    return rows


def _killed_step(results: Path, short_ms: float = 5.0) -> None:
    """raw/seq-u4 as a run killed in its window leaves it: 60 requests of 32 positions, 40 of 1024 (30 ms)."""
    record = results / "raw" / "seq-u4"
    record.mkdir(parents=True)
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": START + 4.0, "planned_end": START + 4.0}))
    np.save(record / "latencies-1.npy", _rows([32] * 60 + [1024] * 40, [short_ms] * 60 + [30.0] * 40))


def _finished_step(results: Path) -> None:
    """load-seq.json with one step of 2 users: 50 requests of 16 positions (2 ms), 50 of 512 (9 ms)."""
    rows = _rows([16] * 50 + [512] * 50, [2.0] * 50 + [9.0] * 50)
    result = LoadResult(
        "seq", "127.0.0.1:1", "closed", 2, 4.0, 100, 0, 25.0, 25.0, LatencySummary.from_samples(rows[:, 1])
    )
    result.lengths = length_figures(rows)
    LoadRun("seq", [result]).save(results)


def _table(text: str, title: str = "### Per request length") -> list[str]:
    """The Markdown table under `title`."""
    after = text.split(title, 1)[1].split("\n\n")[1]
    return after.splitlines()


def test_a_recovered_step_s_lengths_join_the_finished_steps_table(tmp_path: Path) -> None:
    _finished_step(tmp_path)
    _killed_step(tmp_path)
    md_path, html_path = render(tmp_path)
    md = md_path.read_text()
    table = _table(md)
    assert "| seq @ 2 users | 16 | 50 | 50% | 2.00 | 2.00 |" in table
    assert f"| {RECOVERED} | 32 | 60 | 60% | 5.00 | 5.00 |" in table
    assert f"| {RECOVERED} | 1024 | 40 | 40% | 30.00 | 30.00 |" in table
    html = html_path.read_text()
    length_html = html.split("Per request length", 1)[1].split("</table>", 1)[0]
    assert f"<td>{RECOVERED}</td><td>1024</td><td>40</td><td>40%</td><td>30.00</td>" in length_html
    assert "<td>seq @ 2 users</td><td>512</td>" in length_html


def test_a_folder_of_only_a_recovered_step_shows_its_lengths(tmp_path: Path) -> None:
    _killed_step(tmp_path)
    md_path, html_path = render(tmp_path)
    table = _table(md_path.read_text())
    assert table[2:] == [
        f"| {RECOVERED} | 32 | 60 | 60% | 5.00 | 5.00 |",
        f"| {RECOVERED} | 1024 | 40 | 40% | 30.00 | 30.00 |",
    ]
    assert f"<td>{RECOVERED}</td><td>32</td><td>60</td>" in html_path.read_text()


def test_a_recovered_step_s_short_requests_waiting_as_long_are_noted_as_a_finished_step_s(tmp_path: Path) -> None:
    _killed_step(tmp_path, short_ms=29.0)
    md_path, html_path = render(tmp_path)
    md = md_path.read_text()
    assert f"- Lengths: {RECOVERED}: requests of 32 positions waited about as long as those of 1024 (p50 29.0" in md
    assert f"Lengths: {RECOVERED}: requests of 32 positions waited" in html_path.read_text()
    _killed_step(tmp_path / "fast")
    assert "Lengths:" not in render(tmp_path / "fast")[0].read_text()


def test_a_recovered_step_at_one_length_adds_no_table(tmp_path: Path) -> None:
    record = tmp_path / "raw" / "seq-u4"
    record.mkdir(parents=True)
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": START + 4.0, "planned_end": START + 4.0}))
    np.save(record / "latencies-1.npy", _rows([64] * 20, [4.0] * 20))
    md_path, _ = render(tmp_path)
    assert "Per request length" not in md_path.read_text()
