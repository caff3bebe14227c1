"""`quantserve tune` where the p99 SLO bound no trial (session 57): every run, the naive baseline included, served
every request far within it, so goodput was throughput and the SLO chose nothing; tune said nothing of it, and its
"gain in goodput" read as the SLO's doing."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from quantserve.cli.tune import TuneResult, make_config
from quantserve.cli.tune_trials import Trial
from tests.quantserve.test_tune_limits import settings, trial

BASE = make_config("fp32", 0, "powers", 0, 1)
PICK = make_config("int8", 16, "powers", 500, 1)
NOTE = (
    "note: the SLO bound no trial (worst p99 12.00 ms against the 100 ms SLO), so goodput = throughput here; "
    "a tighter SLO would choose among them"
)


def confirmed(tmp_path: Path, search: list[Trial], baseline: Trial, pick: Trial, slo_ms: float = 100.0) -> TuneResult:
    result = TuneResult(search, pick, baseline, 60.0, search_best=search[-1], search_baseline=search[0])
    result.settings = settings(tmp_path, slo_p99_ms=slo_ms, users=16)
    result.confirmed, result.confirmed_pick = True, pick
    result.deployed = {"repo": "repo", "name": "m", "version": 1}
    return result


def roomy(tmp_path: Path, slo_ms: float = 100.0) -> TuneResult:
    """Every run's p99 at most 12 ms under a 100 ms SLO, every request within it (goodput = throughput)."""
    search = [trial(BASE, 400.0, 12.0, 400.0), trial(PICK, 900.0, 5.0, 900.0)]
    return confirmed(tmp_path, search, trial(BASE, 410.0, 11.0, 410.0), trial(PICK, 880.0, 6.0, 880.0), slo_ms)


def test_an_slo_that_bound_no_trial_is_said_in_the_terminal_tune_json_and_tune_html(tmp_path: Path) -> None:
    from quantserve.cli.tune_lines import outcome_lines
    from quantserve.cli.tune_report import render_html

    document = roomy(tmp_path).to_json()
    assert json.loads(json.dumps(document))["slo_unbound"] == NOTE.removeprefix("note: ")  # tune.json
    assert NOTE in outcome_lines(document)  # the terminal's summary (`commands.tune.print_summary`)
    assert escape(NOTE[:1].upper() + NOTE[1:]) in render_html(document)  # tune.html's headline


def test_the_worst_p99_is_of_every_run_the_confirmation_included(tmp_path: Path) -> None:
    result = roomy(tmp_path)
    result.baseline = trial(BASE, 410.0, 31.0, 410.0)  # confirmed slower than the search saw it
    assert "(worst p99 31.00 ms against the 100 ms SLO)" in result.to_json()["slo_unbound"]


def test_an_slo_that_bound_or_nearly_bound_a_run_is_not_said_to_have_bound_none(tmp_path: Path) -> None:
    from quantserve.cli.tune_lines import outcome_lines

    assert roomy(tmp_path, slo_ms=24.0).to_json()["slo_unbound"]  # 12 ms: exactly half of it
    near = roomy(tmp_path, slo_ms=20.0).to_json()  # met by every run, but with 12 ms of 20: no room
    assert near["slo_unbound"] == "" and not any("bound no trial" in line for line in outcome_lines(near))
    late = roomy(tmp_path)  # one request of the baseline's past the SLO: its goodput is below its throughput
    late.trials[0] = trial(BASE, 400.0, 12.0, 399.8)
    assert late.to_json()["slo_unbound"] == ""
    failing = roomy(tmp_path)  # a failed request is no request within the SLO
    failing.trials[1].failed_requests = 3
    assert failing.to_json()["slo_unbound"] == ""
