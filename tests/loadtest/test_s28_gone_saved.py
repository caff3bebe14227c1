"""A step cut short by its model's going away says so once saved: its label, notes, report and exit line, read
back from the file (pl9: the saved run read as an ordinary step, planned_window_s 20 beside window_s 16.1, and a cut
sweep's report showed no "2 later steps not run"); a model gone in the warm-up is that line, not "no measured
window" (exit 2)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
import pytest

from loadtest import recording_files
from loadtest.interruption import MeasuredSteps
from loadtest.load_run import LoadRun
from loadtest.model_gone import ModelGone, cut_short, read_gone, write_gone
from loadtest.percentiles import LatencySummary
from loadtest.report import render
from loadtest.results import LoadResult
from quantserve.cli.loadtest_status import failure_status

CUT_LABEL = "slow @ 4 users (cut short, the model no longer served: 4.3 of 60 s measured)"
LINE = (
    "model 'slow' stopped being served 4.2 s into the window (after 1530 requests answered; a deploy or rollback "
    "meanwhile?): the run was cut short (2 later steps not run); figures up to then kept"
)
WARM_UP_LINE = (
    "model 'e4' stopped being served during the warm-up, before the measured window opened (a deploy or rollback "
    "meanwhile?): the run was cut short; nothing was measured"
)


def _result(requests: int = 1531, failed: int = 1, window_s: float = 4.3) -> LoadResult:
    latency = LatencySummary.from_samples(np.ones(3) if requests else np.zeros(0))
    return LoadResult("slow", "127.0.0.1:1", "closed", 4, window_s, requests, failed, 350.0, 350.0, latency)


def _cut_sweep_saved(tmp_path: Path) -> LoadRun:
    with MeasuredSteps("slow", 3, tmp_path) as measured:
        for step in ("u4", "u8", "u16"):
            measured.start(step)
            measured.finish(cut_short(_result(), ModelGone("slow", "", 4.2, 1530, "NOT_FOUND"), 60.0))
    measured.run().save(tmp_path)
    return LoadRun.load(tmp_path / "load-slow.json")


def test_a_cut_step_is_saved_as_cut_and_read_back_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (result,) = _cut_sweep_saved(tmp_path).results
    assert type(result) is LoadResult and result.model_gone is not None  # read back from the file alone
    assert (result.model_gone["after_s"], result.model_gone["steps_left"], result.model_gone["line"]) == (
        4.2,
        2,
        LINE,
    )
    assert result.label == CUT_LABEL
    assert result.notes()[0] == f"slow @ 4 users: {LINE}"
    assert failure_status([LoadRun("slow", [result])], allowed=False) == 1
    assert (
        capsys.readouterr().err
        == f"quantserve loadtest: slow @ 4 users: {LINE} (notes above, report written); exit 1\n"
    )
    markdown, html = (path.read_text() for path in render(tmp_path))
    assert f"| {CUT_LABEL} |" in markdown and f"- Model gone: slow @ 4 users: {LINE}" in markdown
    assert escape(f"Model gone: slow @ 4 users: {LINE}") in html


def test_an_older_file_without_the_record_loads_as_a_whole_step(tmp_path: Path) -> None:
    _cut_sweep_saved(tmp_path)
    data = json.loads((tmp_path / "load-slow.json").read_text())
    del data["results"][0]["model_gone"]
    (tmp_path / "load-slow.json").write_text(json.dumps(data))
    (result,) = LoadRun.load(tmp_path / "load-slow.json").results
    assert result.model_gone is None and result.label == "slow @ 4 users" and result.gone_note() is None


def test_a_model_gone_in_the_warm_up_is_its_line_not_no_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = "[StatusCode.NOT_FOUND] Request for unknown model: 'e4' has no available versions"
    write_gone(tmp_path, {"at": 100.0, "model": "e4", "version": "", "said": said})
    window = recording_files.read_window(tmp_path, 100.0)  # no window.json: the run ended before it opened
    assert (window.start, window.end) == (100.0, 100.0)
    gone = read_gone(tmp_path, window.start, window.end, np.zeros((0, 8)))
    assert gone is not None and gone.before_window and gone.line() == WARM_UP_LINE
    with pytest.raises(Exception, match="locust recorded no measured window"):
        recording_files.read_window(tmp_path / "none")
    nothing = cut_short(_result(0, 0, 0.0), gone, 20.0)
    assert not nothing.measured_nothing  # the gone line says why, not "no request completed"
    assert failure_status([LoadRun("slow", [nothing])], allowed=False) == 1
    assert (
        capsys.readouterr().err
        == f"quantserve loadtest: slow @ 4 users: {WARM_UP_LINE} (notes above, report written); exit 1\n"
    )


def test_a_soak_cut_by_the_model_going_is_its_line_not_a_version_change() -> None:
    from loadtest.run_identity import RunIdentity
    from loadtest.soak import judge_soak, versions_judged
    from loadtest.utilization import Utilization

    result = cut_short(_result(window_s=5.0), ModelGone("slow", "", 5.0, 1530, "NOT_FOUND"), 20.0)
    rss = [{"t": 100.0 + t, "process_rss_mb": 300.0} for t in range(6)]
    result.utilization = Utilization("psutil", "", samples=len(rss), timeline=rss)
    samples = np.array([[100.0 + t / 10, 1.0, 1.0] for t in range(50)])
    soak = judge_soak(result, 100.0, 105.0, samples, 20.0, 5.0)
    soak.identity, soak.versions_at_end = (
        RunIdentity.from_dict({"started_at": "2026-12-02T00:00:00Z", "versions": ["1"]}),
        [],
    )
    soak = versions_judged(soak)
    assert soak.model_gone == (result.model_gone or {})["line"] and not soak.rss_flat and soak.versions_changed is None
    assert soak.summary().startswith("memory NOT JUDGED, the model stopped being served during the soak; until then")


def test_a_step_cut_in_the_warm_up_is_no_unfinished_run(tmp_path: Path) -> None:
    """Its raw folder has the gone record and no window.json: `report` called it a run killed before it wrote its
    results ("killed by SIGKILL or out of memory"), beside the saved step that says why."""
    from loadtest.unfinished_steps import unfinished_steps

    raw = tmp_path / "raw" / "e4-u4"
    write_gone(raw, {"at": 100.0, "model": "e4", "version": "", "said": "NOT_FOUND"})
    np.save(raw / "latencies-1.npy", np.zeros((0, 3)))
    window = recording_files.read_window(raw, 100.0)
    gone = read_gone(raw, window.start, window.end, np.zeros((0, 8)))
    assert gone is not None
    result = cut_short(_result(0, 0, 0.0), gone, 10.0)
    result.locust_csv_prefix = str(tmp_path / "locust" / "e4-u4")
    run = LoadRun("e4", [result])
    run.save(tmp_path)
    assert unfinished_steps(tmp_path, [run]) == []
