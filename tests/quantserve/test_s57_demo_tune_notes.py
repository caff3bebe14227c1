"""The demo's tune section says tune's notes as `quantserve tune` says them (session 57): the note that most of the
baseline's latency was spent outside Triton (so the gain is a lower bound) was in tune.json and tune.html, and not in
the demo's terminal or summary.json."""

from __future__ import annotations

import json
from pathlib import Path

from quantserve.cli import demo
from quantserve.cli.tables import finite_json
from quantserve.cli.tune import TuneResult, make_config
from tests.quantserve.test_tune_limits import settings, trial

BASE = make_config("fp32", 0, "powers", 0, 1)
PICK = make_config("int8", 16, "powers", 500, 1)


def deployed(tmp_path: Path, baseline_outside: float | None) -> TuneResult:
    search = [trial(BASE, 400.0, 60.0, 390.0, outside_share=0.7), trial(PICK, 900.0, 40.0, 880.0)]
    baseline, pick = trial(BASE, 410.0, 61.0, 400.0, outside_share=baseline_outside), trial(PICK, 890.0, 41.0, 870.0)
    result = TuneResult(search, pick, baseline, 60.0, search_best=search[1], search_baseline=search[0])
    result.settings = settings(tmp_path, slo_p99_ms=100.0, users=16)
    result.confirmed, result.confirmed_pick = True, pick
    result.deployed = {"repo": "repo", "name": "digits_tuned", "version": 1, "config_path": "c.pbtxt"}
    return result


def test_the_demo_says_tunes_note_on_latency_spent_outside_triton_in_tunes_own_words(tmp_path: Path) -> None:
    from quantserve.cli.demo_caveats import tune_caveat_lines
    from quantserve.cli.tune_lines import outcome_lines

    result = deployed(tmp_path, 0.66)
    document = result.to_json()
    note = f"note: {document['outside_server']}"
    assert note.startswith("note: 66% of the naive baseline's latency") and note in outcome_lines(document)  # tune's
    section = demo.tune_section(result, result.settings)
    assert json.loads(json.dumps(finite_json(section)))["outside_server"] == document["outside_server"]  # summary
    assert f"tune: {note}" in tune_caveat_lines(section)  # the demo's terminal: before, nothing of it
    quiet = demo.tune_section(deployed(tmp_path, 0.2), result.settings)
    assert quiet["outside_server"] == "" and not any("outside Triton" in line for line in tune_caveat_lines(quiet))


def test_the_demo_says_an_slo_that_bound_no_run_as_tune_does(tmp_path: Path) -> None:
    from quantserve.cli.demo_caveats import tune_caveat_lines

    result = deployed(tmp_path, None)
    for run in (*result.trials, result.baseline, result.best):  # every request within half the SLO
        run.goodput_rps, run.p99_ms = run.throughput_rps, 20.0
    section = demo.tune_section(result, result.settings)
    assert f"tune: note: {result.to_json()['slo_unbound']}" in tune_caveat_lines(section)
    assert "bound no trial" in section["slo_unbound"]
