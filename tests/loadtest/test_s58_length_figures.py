"""A run whose requests were cut to their real length and went at several lengths says so, with each length's (or
range's) share, p50 and p99, and a note where the short ones waited as long as the long ones. Session 57's probe (a
sequence model, 264 requests of 32 real steps beside 248 of 1024, 8 users, dynamic batching): one pooled row; the
short requests' p50 35.6 ms and p99 112 ms, the long ones' 36.1 and 114, 5.2 ms alone, and nothing said it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_request_shapes_e2e import _token_build

from loadtest.length_figures import length_figures
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import LENGTH_COLUMN, SAMPLE_COLUMNS, read_latencies
from loadtest.report import ReportInputs, render_markdown
from loadtest.report_lines import step_lines
from loadtest.request_data import request_batches, sent_lengths
from loadtest.request_shapes import ServedInputs
from loadtest.results import LoadResult
from quantserve.data import TensorData

RNG = np.random.default_rng(58)


def _rows(lengths: np.ndarray, latencies: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
    """Raw records (`recording_files.read_latencies`) of requests of `lengths` taking `latencies` ms."""
    rows = np.zeros((len(lengths), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = np.linspace(100.0, 110.0, len(lengths)), latencies, 1.0 if ok is None else ok
    rows[:, LENGTH_COLUMN] = lengths
    return rows


def _probe() -> np.ndarray:
    """Session 57's mix: short and long requests batched together, waiting alike (p50 ~35.6 and ~36.1 ms)."""
    lengths = np.array([32] * 264 + [1024] * 248)
    latencies = np.concatenate([RNG.normal(35.6, 1.0, 264), RNG.normal(36.1, 1.0, 248)])
    return _rows(RNG.permutation(lengths), latencies)


def _result(rows: np.ndarray) -> LoadResult:
    ok = rows[:, 2] > 0.5
    latency = LatencySummary.from_samples(rows[ok, 1])
    result = LoadResult("seq", "127.0.0.1:1", "closed", 8, 10.0, len(rows), int((~ok).sum()), 50.0, 50.0, latency)
    result.lengths = length_figures(rows)
    return result


def test_two_lengths_are_shown_one_by_one_with_their_shares_and_latency() -> None:
    rows = _probe()
    figures = length_figures(rows)
    assert figures is not None and figures.lengths == 2
    assert [(r.label, r.requests) for r in figures.ranges] == [("32", 264), ("1024", 248)]
    assert [r.share for r in figures.ranges] == pytest.approx([264 / 512, 248 / 512])
    short = rows[rows[:, LENGTH_COLUMN] == 32, 1]
    assert figures.ranges[0].p50_ms == pytest.approx(float(np.median(short)))
    assert figures.ranges[0].p99_ms == pytest.approx(float(np.percentile(short, 99)))
    line = figures.line("seq @ 8 users")
    assert line.startswith("seq @ 8 users: requests went at 2 lengths (positions as sent): 32: 52%, p50 ")
    assert "; 1024: 48%, p50 " in line


def test_many_lengths_are_grouped_into_quartile_ranges() -> None:
    lengths = np.repeat(np.arange(1, 101), 5)
    figures = length_figures(_rows(lengths, lengths / 10.0))
    assert figures is not None and figures.lengths == 100
    assert [r.label for r in figures.ranges] == ["1-25", "26-50", "51-75", "76-100"]
    assert [r.requests for r in figures.ranges] == [125] * 4
    assert sum(r.share for r in figures.ranges) == pytest.approx(1.0)
    assert "went at 100 lengths (positions as sent, in 4 ranges): 1-25: 25%" in figures.line("s")


def test_lengths_most_requests_share_make_fewer_ranges() -> None:
    lengths = np.concatenate([np.full(90, 32), np.arange(100, 110)])
    figures = length_figures(_rows(lengths, np.ones(100)))
    assert figures is not None and [(r.label, r.requests) for r in figures.ranges] == [("32", 90), ("100-109", 10)]


def test_one_length_uncut_requests_and_failures_make_no_figures() -> None:
    assert length_figures(_rows(np.full(50, 32), np.ones(50))) is None
    assert length_figures(_rows(np.zeros(50), np.ones(50))) is None, "a run that sends requests uncut"
    failed_long = np.array([1.0] * 40 + [0.0] * 10)
    assert length_figures(_rows(np.array([32] * 40 + [1024] * 10), np.ones(50), failed_long)) is None
    assert length_figures(np.zeros((0, SAMPLE_COLUMNS))) is None


def test_a_record_from_before_lengths_were_kept_reads_as_uncut(tmp_path: Path) -> None:
    old = _probe()[:, :9]
    np.save(tmp_path / "latencies-1.npy", old)
    rows = read_latencies(tmp_path, 0.0, 1e9)
    assert rows.shape == (len(old), SAMPLE_COLUMNS) and not rows[:, LENGTH_COLUMN].any()
    assert length_figures(rows) is None


def test_short_requests_waiting_as_long_as_long_ones_are_noted_with_what_may_help(tmp_path: Path) -> None:
    LoadRun("seq", [_result(_probe())]).save(tmp_path)
    loaded = LoadRun.load(tmp_path / "load-seq.json").results[0]
    assert loaded.lengths is not None and [r.label for r in loaded.lengths.ranges] == ["32", "1024"]
    note = loaded.lengths_note()
    assert note is not None and note.startswith("seq @ 8 users: requests of 32 positions waited about as long ")
    assert "as those of 1024 (p50 35." in note and "Triton's ragged batching" in note
    assert "a separate model (or deployment) per range of lengths" in note and "shorter max queue delay" in note
    assert note in loaded.notes() and loaded.lengths.line(loaded.label) in loaded.notes()
    assert ("Lengths", note) in step_lines([LoadRun("seq", [loaded])])
    report = render_markdown(ReportInputs([LoadRun("seq", [loaded])], None))
    assert "### Per request length" in report
    assert "| seq @ 8 users | 32 | 264 | 52% |" in report and "| seq @ 8 users | 1024 | 248 | 48% |" in report


def test_short_requests_answered_faster_get_no_note() -> None:
    lengths = np.array([32] * 100 + [1024] * 100)
    result = _result(_rows(lengths, np.concatenate([np.full(100, 5.2), np.full(100, 36.1)])))
    assert result.lengths is not None and result.lengths_note() is None
    assert [n for n in result.notes() if "lengths" in n] == [result.lengths.line(result.label)]


def test_lengths_near_each_other_get_no_note() -> None:
    result = _result(_rows(np.array([600] * 100 + [1024] * 100), np.full(200, 36.0)))
    assert result.lengths is not None and result.lengths_note() is None


def _mixed(rows: int, short: int, long: int, width: int) -> TensorData:
    """Token ids padded to `width`, every other row `short` real tokens long, the others `long`."""
    lengths = np.where(np.arange(rows) % 2 == 0, short, long)
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    return TensorData({"input_ids": RNG.integers(1, 100, (rows, width)) * mask, "attention_mask": mask})


def test_each_request_s_sent_length_is_its_cut_width_and_0_where_the_run_does_not_cut() -> None:
    data = _mixed(8, 3, 12, 16)
    dynamic, fixed = (
        ServedInputs.from_config("m", {"max_batch_size": 8, "input": [{"name": n, "dims": dims} for n in data.arrays]})
        for dims in ([-1], [16])
    )
    batches = request_batches(data, 1, dynamic)
    assert sent_lengths(data, batches, dynamic) == [3, 12] * 4
    assert sent_lengths(data, request_batches(data, 1, fixed), fixed) == [0] * 8
    assert sent_lengths(data, request_batches(data, 1, None), None) == [0] * 8
    assert sent_lengths(data, request_batches(data, 2, dynamic), dynamic) == [12] * 4, "a request: its longest row"


@pytest.mark.e2e
def test_a_load_of_mixed_lengths_records_each_request_s_length_and_reports_per_length(
    tmp_path: Path, triton_server_factory: Callable[..., object]
) -> None:
    from loadtest.harness import run_load
    from serving.deploy import deploy

    deploy(_token_build(tmp_path / "build", "seq"), tmp_path / "repo", "tokdyn", max_batch=8)
    server = triton_server_factory(tmp_path / "repo")
    data = _mixed(64, 4, 16, 16).save(tmp_path / "mixed.npz")
    out = tmp_path / "out"
    result = run_load(server.grpc_url, "tokdyn", data, users=4, duration_s=2, out_dir=out)  # type: ignore[attr-defined]
    answered = result.requests - result.failed_requests
    assert answered > 0 and result.failed_requests == 0, result.errors
    records = np.concatenate([np.load(path) for path in out.rglob("latencies-*.npy")])
    assert records.shape[1] == SAMPLE_COLUMNS and set(records[:, LENGTH_COLUMN].tolist()) == {4.0, 16.0}
    assert result.lengths is not None and [r.label for r in result.lengths.ranges] == ["4", "16"]
    assert sum(r.requests for r in result.lengths.ranges) == answered
