"""Triton's counters across a live deploy or rollback: a version's counters go when it is unloaded, so a delta over
the window is no window's figure; the server-side figures are left out with a note, as for a restarted server."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from loadtest.load_run import LoadRun
from loadtest.partial_counters import counters_not_whole
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import Window
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.step_result import _server_restarted
from loadtest.triton_metrics import breakdown, counts_disagree, parse_metrics, served_versions, versions_changed
from quantserve.cli.tables import print_load_table


def scrape(model: str = "m", **versions: tuple[float, float]) -> dict[str, dict]:
    """Triton's text for `model` serving each `v<N>=(successful requests, executions)`, parsed."""
    lines = []
    for name, (success, executions) in versions.items():
        labels = f'model="{model}",version="{name.removeprefix("v")}"'
        lines += [
            f"nv_inference_request_success{{{labels}}} {success}",
            f"nv_inference_count{{{labels}}} {success}",
            f"nv_inference_exec_count{{{labels}}} {executions}",
            f"nv_inference_queue_duration_us{{{labels}}} {success * 600}",
        ]
    return parse_metrics("\n".join(lines))


def client_result(requests: int, failed: int = 0, users: int = 8) -> LoadResult:
    """What the client counted over a 30 s window."""
    latency = LatencySummary(requests - failed, 4.0, 4.5, 5.0, 12.0, 13.0, 2.0, 30.0)
    return LoadResult("m", "h:1", "closed", users, 30.0, requests, failed, requests / 30, requests / 30, latency)


def measured(result: LoadResult, window: Window) -> LoadResult:
    """The result as `run_step` leaves it: the window's breakdown, then left out when it does not cover it."""
    assert window.metrics_before is not None and window.metrics_after is not None
    result.server = breakdown(window.metrics_before, window.metrics_after, "m")
    if partial := counters_not_whole(window, result):
        result.server_counters_left_out, result.server = partial, None
    return result


def test_each_scrape_keeps_the_counters_per_version() -> None:
    models = scrape(v1=(900, 300), v2=(40, 20))
    assert models["m"]["nv_inference_request_success"] == 940  # summed, as before
    assert served_versions(models, "m") == {
        "1": {**served_versions(models, "m")["1"], "nv_inference_request_success": 900.0},
        "2": {**served_versions(models, "m")["2"], "nv_inference_exec_count": 20.0},
    }
    assert served_versions(models, "absent") == {}


def test_a_change_of_served_versions_is_named() -> None:
    assert versions_changed(scrape(v1=(14, 14)), scrape(v2=(12533, 5000)), "m") == (
        "model 'm' served versions changed during the window (1 → 2)"
    )
    assert "(1 → 1, 2)" in (versions_changed(scrape(v1=(14, 14)), scrape(v1=(50, 9), v2=(9, 9)), "m") or "")
    # tritonserver 2.51 lists an unloaded version again, its counters at zero: it served nothing, so it is not named
    assert "(1 → 2)" in (versions_changed(scrape(v1=(0, 0)), scrape(v1=(0, 0), v2=(1931, 1046)), "m") or "")
    assert "(1 → none)" in (versions_changed(scrape(v1=(14, 14)), {}, "m") or "")
    assert versions_changed(scrape(v1=(14, 14)), scrape(v1=(5000, 900)), "m") is None
    # a rollback among versions both still loaded (pl5: v2 → v1 at 9 s of 12): both listed at both ends, both answered
    assert versions_changed(scrape(v1=(0, 0), v2=(7, 7)), scrape(v1=(534, 200), v2=(10057, 3000)), "m") == (
        "model 'm' answered from versions 1, 2 during the window (a rollback or deploy meanwhile, or another client "
        "addressing a version): its figures may mix two versions' answers"
    )
    assert versions_changed(scrape(v1=(50, 50), v2=(7, 7)), scrape(v1=(50, 50), v2=(10057, 3000)), "m") is None
    assert versions_changed({}, scrape(v1=(5000, 900)), "m") is None  # nothing to compare with


def test_hot_swap_window_leaves_out_the_server_figures_with_a_note(tmp_path: Path) -> None:
    """The probe's deploy at 10 s of 30 s: v1 unloaded with its counters, v2's began at zero; the table showed v2's
    last 20 s (avg batch 2.44, queue 614 µs) as the window's."""
    window = Window(0.0, 30.0, scrape(v1=(14, 14)), scrape(v2=(12547, 4823)))
    result = measured(client_result(49569), window)
    assert result.server is None
    note = result.counters_note()
    assert note == (
        "m @ 8 users: model 'm' served versions changed during the window (1 → 2): a version's counters start from "
        "zero each time Triton loads it and go to zero once it is unloaded, so its server-side figures (avg batch, "
        "queue, infer) are left out; the client's figures stand"
    )
    assert note in result.notes() and result.restart_note() is None
    console = Console(width=160, record=True, force_terminal=False)
    print_load_table([result], console)
    row = next(line for line in console.export_text().splitlines() if "m @ 8 users" in line)
    assert "2.44" not in row and "614" not in row and row.count("–") == 2
    LoadRun("m", [result]).save(tmp_path)
    assert f"- Server counters: {note}" in render(tmp_path)[0].read_text()
    assert LoadRun.load(tmp_path / "load-m.json").results[0].server_counters_left_out == result.server_counters_left_out


def test_a_rollback_to_the_same_version_is_told_by_the_client_count() -> None:
    """Deploy then roll back inside the window: version 1 again at both ends, its counters begun again at zero but
    higher by the end, so only the client's count of 49,569 against Triton's 12,533 shows it."""
    window = Window(0.0, 30.0, scrape(v1=(14, 14)), scrape(v1=(12547, 4823)))
    result = measured(client_result(49569), window)
    assert result.server is None
    assert result.server_counters_left_out == (
        "Triton counted 12533 successful requests of model 'm' over the window, the client 49569: a version "
        "unloaded or reloaded during it (a deploy, a rollback) takes its counters with it, another client's load "
        "adds to them"
    )


def test_an_incompatible_swap_that_left_triton_counting_nothing_is_no_zero_batch() -> None:
    """The probe's incompatible deploy: 13,251 requests succeeded on v1, Triton's delta said 0 (avg batch 0.00)."""
    window = Window(0.0, 20.0, scrape(v1=(0, 0)), scrape(v1=(0, 0)))
    result = measured(client_result(13947, failed=696, users=4), window)
    assert result.server is None and "Triton counted 0 successful requests" in (result.server_counters_left_out or "")


def test_an_ordinary_window_keeps_its_figures() -> None:
    """Requests in flight at the ends and those answered while a scrape was read are noise, not a swap."""
    window = Window(0.0, 30.0, scrape(v1=(14, 14)), scrape(v1=(14 + 49_400, 20_000)))
    result = measured(client_result(49569), window)
    assert result.server is not None and result.server_counters_left_out is None and result.counters_note() is None
    assert not counts_disagree(990, 1000, in_flight=8) and not counts_disagree(1000, 990, in_flight=8)
    assert counts_disagree(700, 1000, in_flight=8) and counts_disagree(1300, 1000, in_flight=8)
    assert not counts_disagree(0, 4, in_flight=1)  # a slow model's handful of requests


def test_a_version_swap_is_no_restart() -> None:
    """v1 with 5,000 requests unloaded, v2 at 100 by the end: the summed counters went back, but the server stayed."""
    swapped = Window(0.0, 10.0, scrape(v1=(5000, 900)), scrape(v2=(100, 40)))
    assert _server_restarted(7, 7, swapped, "m") is None
    reloaded = Window(0.0, 10.0, scrape(v1=(5000, 900)), scrape(v1=(100, 40)))
    assert "counters were lower" in (_server_restarted(None, None, reloaded, "m") or "")


def test_answers_the_client_failed_itself_are_no_missing_counters() -> None:
    """Triton answered all 1 000 requests; the client failed 900 of them (each answered fewer rows than sent): the
    counters cover the window, and nothing blames a deploy."""
    window = Window(0.0, 30.0, scrape(v1=(14, 14)), scrape(v1=(1014, 600)))
    result = measured(client_result(1000, failed=900), window)
    assert result.server is not None and result.server_counters_left_out is None
    # the same counts with nothing failed by the client are a real disagreement
    assert measured(client_result(100), window).server is None


def test_a_metrics_address_without_triton_counters_is_named_as_such() -> None:
    """An address that answers 200 with other metrics: no nv_* series at all. It was blamed on a version unloaded or
    reloaded, or another client's load."""
    window = Window(0.0, 30.0, parse_metrics("process_cpu_seconds_total 3.5"), parse_metrics("up 1"))
    result = measured(client_result(49569), window)
    assert result.server is None
    assert result.server_counters_left_out == (
        "the metrics address answered with no Triton counters for any model (no nv_inference_* series) while model "
        "'m' served 49569 requests: is --metrics-url Triton's metrics port (8002 by default)?"
    )


def test_a_rollback_among_loaded_versions_leaves_out_the_server_figures_and_says_why() -> None:
    """pl5: v2 → v1 (both loaded) at 9 s of 12: the counts agreed (10584 against 10580), exit 0, no word."""
    window = Window(0.0, 12.0, scrape(v1=(0, 0), v2=(7, 7)), scrape(v1=(534, 200), v2=(10057, 3000)))
    result = measured(client_result(10580), window)
    assert result.server is None and result.server_counters_left_out == (
        "model 'm' answered from versions 1, 2 during the window (a rollback or deploy meanwhile, or another client "
        "addressing a version): its figures may mix two versions' answers"
    )


def test_a_new_version_listed_at_zero_beside_another_is_said_to_be_late_or_unloaded_again() -> None:
    """traffic34: deploy v3 at 6 s, rollback to v2 at 11 s of 20: the end scrape listed v3 at zero (unloaded, its
    counters dropped) and the note read "2 → 2, 3" as if both served at the end."""
    line = versions_changed(scrape(v2=(10, 10)), scrape(v2=(599, 300), v3=(0, 0)), "m") or ""
    assert line == (
        "model 'm' served versions changed during the window (2 → 2, 3); 3 listed at zero at the end: loaded late "
        "and not yet answering, or unloaded again (a rollback drops its counters)"
    )
    assert versions_changed(scrape(v1=(14, 14)), scrape(v2=(0, 0)), "m") == (
        "model 'm' served versions changed during the window (1 → 2)"  # the only version: a deploy's, nothing else
    )


def test_a_version_that_never_loaded_beside_the_served_one_keeps_the_server_figures() -> None:
    """Session 49 probe: config switched to a version 3 whose model.onnx was truncated, mid-load: serve kept v1
    serving; Triton 2.51 listed v3 at zero while it tried, v1's counters ran on (14505 → 29459 over 14925 client
    requests), yet the note said "1 → 1, 3 … loaded late or unloaded again" and dropped avg batch and queue."""
    window = Window(0.0, 30.0, scrape(v1=(14505, 5000)), scrape(v1=(29459, 10000), v3=(0, 0)))
    result = measured(client_result(14925), window)
    assert result.server_counters_left_out is None and result.server is not None
    assert result.server.requests_succeeded == 29459 - 14505


def test_a_version_at_zero_at_the_end_whose_answers_went_with_it_is_still_said() -> None:
    """traffic34's shape: the new version answered, then was unloaded (its counters gone): the client counted more."""
    window = Window(0.0, 20.0, scrape(v2=(10, 10)), scrape(v2=(599, 300), v3=(0, 0)))
    result = measured(client_result(1200), window)
    assert result.server is None
    assert (result.server_counters_left_out or "").startswith(
        "model 'm' served versions changed during the window (2 → 2, 3); 3 listed at zero at the end"
    )
    went_back = Window(0.0, 20.0, scrape(v1=(900, 300)), scrape(v1=(40, 20), v3=(0, 0)))  # v1 reloaded: no carry-on
    assert measured(client_result(40), went_back).server is None
