"""Which inputs each length input cut is part of the run's record, and the per-length line names the input it counts
(session 60): nagisa's load test printed "'uni', … cut by input 'char_len'; 'pos_wid', … cut by input 'word_len'"
before the load, but load-<model>.json and report.md held neither, and "requests went at 53 lengths (positions as
sent …)" did not say they were char_len's positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_triton_client import served_model
from test_s60_two_length_inputs import two_length_data

import serving.client
from loadtest.harness import check_ready
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.recording_files import LENGTH_COLUMN, SAMPLE_COLUMNS, Window
from loadtest.report import ReportInputs, render_html, render_markdown
from loadtest.request_data import cut_inputs, request_batches, sent_lengths
from loadtest.request_shapes import ServedInputs
from loadtest.step_result import _summarize
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData

CUTS = {"char_len": ["chars"], "word_len": ["words"]}


def _server(arrays: dict[str, np.ndarray]) -> type:
    """A served model taking `arrays` at any length on every axis but the batch (`_dims`)."""
    specs = [TensorSpec(k, "int64", ("batch", *(f"d{i}" for i in range(1, v.ndim)))) for k, v in arrays.items()]
    inputs = [_dims(k, v.ndim) for k, v in arrays.items()]
    return served_model(specs, {"max_batch_size": 8, "input": inputs})


def _dims(name: str, ndim: int) -> dict[str, object]:
    """A config input: any length on each axis; one value a sample as deploy serves it (dims [1] reshaped to [])."""
    return {"name": name, "dims": ["-1"] * (ndim - 1)} if ndim > 1 else {"name": name, "dims": ["1"], "reshape": {}}


def _checked(arrays: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadSettings:
    np.savez(tmp_path / "d.npz", **arrays)
    monkeypatch.setattr(serving.client, "TritonGrpcClient", _server(arrays))
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(8), 1.0)
    check_ready(settings)
    return settings


def _rows(lengths: list[int]) -> np.ndarray:
    """Raw records of answered requests sent at `lengths`."""
    rows = np.zeros((len(lengths), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = np.linspace(100.0, 110.0, len(lengths)), 5.0, 1.0
    rows[:, LENGTH_COLUMN] = lengths
    return rows


def test_the_lengths_recorded_are_the_first_cut_inputs() -> None:
    arrays = two_length_data(10)
    served = ServedInputs.from_config("m", {"max_batch_size": 8, "input": [{"name": k, "dims": [-1]} for k in arrays]})
    data = TensorData(arrays)
    assert cut_inputs(data, served) == CUTS
    assert sent_lengths(data, request_batches(data, 1, served), served) == arrays["char_len"].tolist()
    assert cut_inputs(data, None) == {}


def test_the_cut_note_is_recorded_in_the_results_and_shown_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _checked(two_length_data(10), tmp_path, monkeypatch)
    assert settings.cut_by == CUTS
    assert settings.padding_note is not None and "inputs 'chars' cut by input 'char_len'" in settings.padding_note
    window = Window(100.0, 110.0, None, None)
    result = _summarize(settings, ClosedLoop(8), window, _rows([4, 9, 16] * 10), tmp_path / "locust" / "m-u8")
    LoadRun("m", [result]).save(tmp_path)
    loaded = LoadRun.load(tmp_path / "load-m.json").results[0]
    assert loaded.cut_by == CUTS and loaded.padding_note == settings.padding_note
    assert loaded.lengths is not None and loaded.lengths.length_input == "char_len"
    line = loaded.lengths.line(loaded.label)
    assert line.startswith("m @ 8 users: requests went at 3 lengths, as cut by input 'char_len' (positions as sent;")
    assert "not the lengths input 'word_len' cut): 4: 33%" in line
    report = render_markdown(ReportInputs([LoadRun("m", [loaded])], None))
    said = f"- Padding: m: {settings.padding_note}; the lengths per request below are those input 'char_len' cut"
    assert said in report.splitlines()
    assert report.index(said) < report.index("### Per request length"), "the table it speaks of comes below it"
    assert "inputs &#x27;words&#x27; cut by input &#x27;word_len&#x27;" in render_html(
        ReportInputs([LoadRun("m", [loaded])], None)
    )


def test_a_file_from_before_reads_as_not_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _checked(two_length_data(10), tmp_path, monkeypatch)
    result = _summarize(settings, ClosedLoop(8), Window(100.0, 110.0, None, None), _rows([4, 9] * 10), tmp_path / "x")
    result.cut_by = result.padding_note = None
    assert result.lengths is not None
    result.lengths.length_input, result.lengths.not_counted = None, []
    assert result.lengths.line("s") == "s: requests went at 2 lengths (positions as sent): " + (
        "4: 50%, p50 5.0 ms, p99 5.0 ms; 9: 50%, p50 5.0 ms, p99 5.0 ms"
    )
    assert "- Padding:" not in render_markdown(ReportInputs([LoadRun("m", [result])], None))
