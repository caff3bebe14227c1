"""A run whose served versions changed says what answered it: the versions its windows recorded (`version_spans`),
or the one it was pinned to (--model-version), not "its figures are of both"; and a pinned run's version unloaded
is that version's going, not the model's.

Probed (session 54): `loadtest --model digits_int8 --model-version 4 --rate 50 --duration 14s`, a rollback to 3
landing after the window: version 4 gave all 699 answers, 0 failed, yet the run said "served versions changed during
the run (4 → 3): … its figures are of both". Pinned to 3 with a rollback to 5 inside the window: "model
'digits_int8' was unloaded … (version 3 → none served)" while version 5 served.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.load_pattern import OpenLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.partial_counters import counters_not_whole
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import Window
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity, answered_versions
from loadtest.triton_metrics import addressed_version, breakdown, parse_metrics
from quantserve.cli.loadtest_lines import versions_line

STARTED = "2026-12-06T04:09:48Z"


def pinned_step(version: int, answers: int, failed: int = 0) -> LoadResult:
    latency = LatencySummary(answers, 55.9, 200.0, 352.6, 400.0, 60.0, 5.0, 500.0)
    step = LoadResult("digits_int8", "h:1", "open", 1, 14.0, answers + failed, failed, 49.8, 199.0, latency)
    step.version_spans = [{"version": version, "first_s": 0.034, "last_s": 14.035, "answers": answers}]
    return step


def settings(version: str) -> LoadSettings:
    return LoadSettings("h:1", "digits_int8", Path("d.npz"), OpenLoop(50.0), 14.0, model_version=version)


def test_a_change_after_the_pinned_versions_answers_is_no_mix() -> None:
    run = LoadRun("digits_int8@4", [pinned_step(4, 699)], precision="fp32")
    run.identity = RunIdentity(STARTED, ["4"], versions_at_end=["3"])
    line = versions_line(run, settings("4")) or ""
    assert line == (
        "model 'digits_int8@4' served versions changed by the run's end (4 → 3), but version 4 gave every answer in "
        "its window: its figures are of that version alone"
    )
    assert "both" not in line


def test_a_pinned_run_without_recorded_spans_goes_by_its_pin() -> None:
    step = pinned_step(3, 625, failed=76)
    step.version_spans = None  # a record from before the spans were kept
    run = LoadRun("digits_int8@3", [step], precision="int8")
    run.identity = RunIdentity(STARTED, ["3"], versions_at_end=["5"])
    assert "version 3 gave every answer" in (versions_line(run, settings("3")) or "")
    assert "of both" in (versions_line(run, settings("")) or "")  # unpinned, nothing recorded: as before


def test_two_answering_versions_are_named() -> None:
    identity = RunIdentity(STARTED, ["1"], versions_at_end=["2"])
    assert identity.versions_note("m", "fp32", [1, 2]) == (
        "model 'm' served versions changed during the run (1 → 2): its precision fp32 and versions were read at the "
        "start, and its figures are of versions 1, 2"
    )
    assert identity.versions_note("m", None, []) == (
        "model 'm' served versions changed by the run's end (1 → 2); no request was answered in its window"
    )


def test_answered_versions_over_a_runs_windows() -> None:
    spans = [[{"version": 2, "answers": 5}], [{"version": 1, "answers": 3}, {"version": 2, "answers": 1}], []]
    assert answered_versions(spans) == [1, 2]
    assert answered_versions([[{"version": 1}], None]) is None


def counters(**versions: float) -> str:
    return "\n".join(
        f'nv_inference_{name}{{model="digits_int8",version="{version}"}} {value}'
        for version, value in versions.items()
        for name in ("request_success", "exec_count")
    )


def test_a_pinned_versions_unload_is_not_the_models() -> None:
    """Triton 2.51 listed version 5 (serving) at its old count at both ends and version 3 at zero at the end."""
    before = parse_metrics(counters(**{"3": 1.0, "5": 16189.0}))
    after = parse_metrics(counters(**{"3": 0.0, "5": 16189.0}))
    view = Window(
        0.0, 14.1, addressed_version(before, "digits_int8", "3"), addressed_version(after, "digits_int8", "3")
    )
    step = pinned_step(3, 625, failed=76)
    step.errors = {
        "[StatusCode.UNAVAILABLE] Request for unknown model: 'digits_int8' version 3 is not at ready state": 79
    }
    assert view.metrics_before is not None and view.metrics_after is not None
    step.server = breakdown(view.metrics_before, view.metrics_after, "digits_int8")
    said = counters_not_whole(view, step, 0, "3") or ""
    assert said == (
        "version 3 of model 'digits_int8' (the one addressed) was unloaded during the window (a rollback or deploy?) "
        "and Triton dropped its counters"
    )
    assert "none served" not in said
