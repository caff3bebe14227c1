"""Tune's send-lag line says what loadtest's note says of the same run (session 66).

Tune read each trial's send lag from its worst-of-windows lags alone (`tune_verdict.send_lag_line`): no per-second
timeline, no outages, no requests left unanswered at the end. So it blamed the generator's CPU for an in-flight pool
that the unanswered filled (loadtest, since session 65: "all 2000 in-flight slots were taken"), and the rate for slots
an outage held. Each trial now keeps every window's `loadtest.client_lags.ClientWindow`, and its line reads the
window where requests left latest through loadtest's own reading (`loadtest.send_lag.window_cause`).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_s65_full_pool_cause import run as full_pool_run
from test_s65_full_pool_cause import step as full_pool_step
from test_s65_outage_slots import BACK, DOWN, REFUSED
from test_s65_outage_slots import samples as outage_rows
from test_s65_outage_slots import step as outage_step

from loadtest.recording_files import SAMPLE_COLUMNS
from loadtest.results import LATE_SEND_MS, LoadResult
from loadtest.send_lag import OUTAGE, SLOTS, window_cause
from quantserve.cli.tune_trials import ServingConfig
from quantserve.cli.tune_verdict import send_lag_line
from quantserve.json_files import finite_json

CONFIG = ServingConfig(16, (8, 16), 500, 1)


def tune_best(result: LoadResult, rows: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The trial tune measures of one window whose Locust run is `result` and whose records are `rows` (end,
    latency ms, ok, send lag ms, ...), as tune.json holds it (`tune_server.window_samples`, no warm-up)."""
    from loadtest import load_settings, recording_files
    from quantserve.cli.tune_server import window_samples

    rows = np.pad(rows, ((0, 0), (0, SAMPLE_COLUMNS - rows.shape[1])))  # the recording files' columns
    start = float(rows[:, 0].min()) - 0.5
    monkeypatch.setattr(load_settings, "step_paths", lambda *_: (tmp_path / "raw", tmp_path / "locust"))
    monkeypatch.setattr(recording_files, "read_window", lambda *_: SimpleNamespace(start=start, end=start + 60.0))
    monkeypatch.setattr(recording_files, "read_latencies", lambda *_: rows)
    monkeypatch.setattr(recording_files, "read_unanswered", lambda *_: np.zeros((0, 2)))
    traced = SimpleNamespace(trace=tmp_path / "trace.csv", warmup_s=0.0)
    samples = window_samples(traced, None, None, tmp_path, result)  # type: ignore[arg-type]
    document: dict[str, Any] = json.loads(json.dumps(finite_json(samples.trial(CONFIG, 100.0).to_json())))
    return document


def test_a_pool_the_unanswered_filled_is_the_pools_in_tunes_line_as_in_loadtests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 65's probe: 2000 slots, all taken at the end by requests sent and unanswered; the answered ones saw
    972 in flight, the generator 125 ms late of a 136 ms send lag. Loadtest said the slots; tune said its CPU."""
    result = full_pool_step(2000)
    cause = window_cause(result.client_window(), LATE_SEND_MS)
    assert cause is not None and cause.part == SLOTS
    assert cause.words in (result.send_lag_note() or "")
    best = tune_best(result, full_pool_run(2000)[0], tmp_path, monkeypatch)
    assert best["client_windows"][0]["lags"]["unanswered_at_end"] == 2000  # the trial carries what was unanswered
    line = send_lag_line(best)
    assert line.endswith(f"({cause.short})"), line
    assert "all 2000 in-flight slots were taken" in line and "fell behind its schedule" not in line


def test_slots_an_outage_held_are_the_outages_in_tunes_line_as_in_loadtests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 65's outage: 40 req/s against a server answering 200 req/s but for 15 s of restart; tune read the
    full pool alone and called it the rate's (or a burst's) backlog."""
    rows = outage_rows(200.0, (DOWN, REFUSED, BACK))
    result = outage_step(rows)
    cause = window_cause(result.client_window(), LATE_SEND_MS)
    assert cause is not None and cause.part == OUTAGE
    note = result.send_lag_note() or ""
    assert cause.words in note and "during the outage" in note
    best = tune_best(result, rows, tmp_path, monkeypatch)
    assert best["client_windows"][0]["outages"] and best["client_windows"][0]["timeline"]  # kept in tune.json
    line = send_lag_line(best)
    assert line.endswith(f"({cause.short})"), line
    assert "during the outage" in line and "the outage's wait, not the rate's" in line


def test_the_window_where_requests_left_latest_is_read_and_an_older_file_keeps_its_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two windows, the later-sending one names the cause; a tune.json from before session 66 (no windows kept)
    is read from the trial's lags as before."""
    full = tune_best(full_pool_step(2000), full_pool_run(2000)[0], tmp_path, monkeypatch)
    calm = dict(full["client_windows"][0])
    calm["lags"] = {**calm["lags"], "p99_ms": 12.0, "unanswered_at_end": 0, "peak_in_flight": 3}
    two = {**full, "client_windows": [calm, full["client_windows"][0]]}
    assert "all 2000 in-flight slots were taken" in send_lag_line(two)
    old = {key: value for key, value in full.items() if key != "client_windows"}
    assert "the load generator fell behind its schedule" in send_lag_line(old)  # all the old file can say
    assert send_lag_line({**full, "send_lag_p99_ms": 4.0}) == ""  # the trial's own lag not late: no line
