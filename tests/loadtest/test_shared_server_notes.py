"""What a step's notes say when the server was not the model's alone, or the model left it: a model unloaded
mid-run is no tritonserver restart, other models' load on the same server is named, and errors that differ only in
their numbers are one error.

As probed: boolm's folder moved out of the repository 12 s into a 20 s run read "tritonserver restarted" though one
pid served throughout (Triton 2.51 listed boolm again at zero, the other models' counters unchanged); u8img and
heavy load-tested at once each reported the whole server's CPU as theirs, with no note; bertfix's 216 failures,
one message per trimmed length, read "Locust counted 38 × … over its whole run, after the window too".
"""

from __future__ import annotations

from loadtest.partial_counters import counters_not_whole
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import Window
from loadtest.results import LoadResult
from loadtest.step_result import _server_restarted
from loadtest.triton_metrics import breakdown, parse_metrics


def scrape(**models: float) -> dict[str, dict]:
    """Triton's text for each `model=successful requests` (version 1; None: not listed), parsed."""
    lines = []
    for model, success in models.items():
        labels = f'model="{model}",version="1"'
        lines += [
            f"nv_inference_request_success{{{labels}}} {success}",
            f"nv_inference_exec_count{{{labels}}} {success}",
        ]
    return parse_metrics("\n".join(lines))


def result(model: str, requests: int, failed: int = 0) -> LoadResult:
    latency = LatencySummary(requests - failed, 1.5, 2.0, 2.5, 9.0, 12.0, 0.5, 30.0)
    return LoadResult(model, "h:1", "closed", 2, 20.0, requests, failed, requests / 20, requests / 20, latency)


def measured(step: LoadResult, window: Window, pid_before: int | None, pid_after: int | None) -> LoadResult:
    """The step as `step_result` leaves it."""
    assert window.metrics_before is not None and window.metrics_after is not None
    step.server = breakdown(window.metrics_before, window.metrics_after, step.model)
    step.server_restarted = _server_restarted(pid_before, pid_after, window, step.model)
    if step.server_restarted:
        step.server = None
    elif partial := counters_not_whole(window, step):
        step.server_counters_left_out, step.server = partial, None
    return step


def test_a_model_unloaded_mid_run_is_no_restart() -> None:
    before = scrape(boolm=5542, u8img=18498, heavy=8905)
    for after in (scrape(boolm=0, u8img=18498, heavy=8905), scrape(u8img=18498, heavy=8905)):  # at zero, or gone
        for pids in ((4242, 4242), (None, None)):  # the same pid throughout, or none seen: the others' counters tell
            step = measured(result("boolm", 6310, failed=453), Window(0.0, 20.0, before, after), *pids)
            notes = " ".join(step.notes())
            assert step.server_restarted is None and "restarted" not in notes, notes
            assert "model 'boolm' was unloaded during the window: it lost its versions (version 1" in notes, notes
    # loaded again just before the run, its counters at zero at the start: Triton's NOT_FOUND answers tell the unload
    fresh = Window(0.0, 20.0, scrape(boolm=0, u8img=18498), scrape(boolm=0, u8img=18498))
    step = result("boolm", 9410, failed=229)
    step.errors = {
        "TritonRequestFailed(\"[StatusCode.NOT_FOUND] Request for unknown model: 'boolm' has no available "
        'versions")': 225
    }
    assert "model 'boolm' was unloaded" in (measured(step, fresh, 7, 7).server_counters_left_out or "")


def test_a_restart_still_reads_as_one() -> None:
    """Every model's counters back to near zero at once, or another pid: the server was replaced."""
    before, after = scrape(boolm=5542, u8img=18498), scrape(boolm=40, u8img=3)
    assert "counters were lower" in (_server_restarted(None, None, Window(0.0, 20.0, before, after), "boolm") or "")
    assert "pid 1 listened" in (_server_restarted(1, 2, Window(0.0, 20.0, before, after), "boolm") or "")
    reloaded = measured(result("boolm", 6310), Window(0.0, 20.0, before, scrape(boolm=40, u8img=18600)), 7, 7)
    assert "model 'boolm' was reloaded during the window" in (reloaded.server_counters_left_out or "")
    # a deploy whose new version is listed at zero, not served yet, and the old one dropped: a swap, no unload
    swap_text = 'nv_inference_request_success{model="boolm",version="2"} 0'
    swap = parse_metrics(swap_text)
    swapped = measured(result("boolm", 6310), Window(0.0, 20.0, before, {**after, **swap}), 7, 7)
    assert "served versions changed during the window (1 → 2)" in (swapped.server_counters_left_out or "")
    # the unloaded version listed again at zero beside it (tritonserver 2.51) is not served: still "1 → 2"
    both = parse_metrics('nv_inference_request_success{model="boolm",version="1"} 0\n' + swap_text)
    swapped = measured(result("boolm", 6310), Window(0.0, 20.0, before, {**after, **both}), 7, 7)
    assert "served versions changed during the window (1 → 2)" in (swapped.server_counters_left_out or "")


def test_other_models_load_on_the_server_is_named() -> None:
    from loadtest.triton_metrics import other_models_requests  # here: the other tests judge files without it

    before, after = scrape(u8img=1000, heavy=500, idle=7), scrape(u8img=41000, heavy=1300, idle=7, new=30)
    assert other_models_requests(before, after, "u8img") == {"heavy": 800, "new": 30}
    step = result("u8img", 40000)
    step.other_models = other_models_requests(before, after, "u8img")
    (note,) = [n for n in step.notes() if "other models" in n]
    assert "'heavy' 800, 'new' 30 requests, against this step's 40000" in note and "CPU" in note, note
    step.other_models = {"heavy": 2}  # a health check or one infer: nothing the figures would show
    assert not [n for n in step.notes() if "other models" in n]


def test_errors_that_differ_only_in_their_numbers_are_one_error() -> None:
    head = "TritonRequestFailed(\"[StatusCode.INVALID_ARGUMENT] unexpected shape for input 'attention_mask' for "
    counts = {3: 17, 4: 20, 5: 29, 6: 14, 7: 26, 8: 38, 9: 22, 10: 31, 11: 17}  # 214 in Locust's table
    step = result("bertfix", 216, failed=216)
    step.errors = {f"{head}model 'bertfix'. Expected [-1,16], got [1,{n}].\")": c for n, c in counts.items()}
    note = step.failure_note() or ""
    assert note.startswith("bertfix @ 2 users: 216 of 216 requests failed (100.0 %); 214 × "), note
    assert "9 messages that differ only in their numbers" in note and "window" not in note, note
    step.errors['TritonRequestFailed("[StatusCode.UNAVAILABLE] Socket closed")'] = 3
    assert '; and 3 × TritonRequestFailed("[StatusCode.UNAVAILABLE] Socket closed")' in (step.failure_note() or "")
    step.errors['TritonRequestFailed("[StatusCode.NOT_FOUND] no available versions")'] = 2
    assert "; 2 other distinct errors (5 ×)" in (step.failure_note() or "")
