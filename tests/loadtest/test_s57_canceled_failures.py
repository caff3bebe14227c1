"""Triton's failures by `reason`: the client's deadline failures it cancelled are said to be those (session 57).

A probe's open loop far over capacity with `--request-timeout 0.1` had 1673 requests fail at the client's deadline;
Triton's failure counter read 364, and the note said the client's own failures (its deadline…) "never reach it".
Triton's /metrics read `nv_inference_request_failure{reason="CANCELED"} 364`: 364 of those deadline failures,
cancelled by Triton before they ran; 1310 more ran anyway (successes Triton counted beyond the client's).
"""

from __future__ import annotations

from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.triton_metrics import breakdown, parse_metrics

# the probe's scrape at the window's end (lt_abandon.metrics, tritonserver with the `reason` label), and one at its
# start; an older server's lines have no `reason`
_END = """# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
nv_inference_request_success{model="seq_tuned",version="1"} 5150
nv_inference_request_failure{model="seq_tuned",reason="OTHER",version="1"} 0
nv_inference_request_failure{model="seq_tuned",reason="BACKEND",version="1"} 0
nv_inference_request_failure{model="seq_tuned",reason="CANCELED",version="1"} 364
nv_inference_request_failure{model="seq_tuned",reason="REJECTED",version="1"} 0
nv_inference_count{model="seq_tuned",version="1"} 5150
nv_inference_exec_count{model="seq_tuned",version="1"} 463
"""
_START = """nv_inference_request_success{model="seq_tuned",version="1"} 67
nv_inference_request_failure{model="seq_tuned",reason="OTHER",version="1"} 0
nv_inference_request_failure{model="seq_tuned",reason="BACKEND",version="1"} 0
nv_inference_request_failure{model="seq_tuned",reason="CANCELED",version="1"} 0
nv_inference_request_failure{model="seq_tuned",reason="REJECTED",version="1"} 0
nv_inference_count{model="seq_tuned",version="1"} 67
nv_inference_exec_count{model="seq_tuned",version="1"} 6
"""


def _unlabelled(text: str) -> str:
    return "\n".join(
        line.replace('reason="CANCELED",', "")
        for line in text.splitlines()
        if 'reason="' not in line or "CANCELED" in line
    )


def _abandoned(start: str = _START, end: str = _END, version: str = "") -> LoadResult:
    """The probe's step: 5446 requests, 1673 failed at the client's 0.1 s deadline, Triton's counters from the text."""
    latency = LatencySummary(3773, 2994.24, 7834.72, 7869.5, 8825.46, 3530.67, 1.0, 9000.0)
    result = LoadResult("seq_tuned", "127.0.0.1:19851", "open", 1, 15.0, 5446, 1673, 251.5, 251.5, latency)
    result.rate_rps, result.arrivals = 900.0, "poisson"
    result.errors = {"TritonRequestFailed('[StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded')": 1673}
    result.deadline_failures, result.request_timeout_s = 1673, 0.1
    result.server = breakdown(parse_metrics(start), parse_metrics(end), "seq_tuned", version)
    return result


def _counter_note(result: LoadResult) -> str:
    (note,) = [n for n in result.notes() if "nv_inference_request_failure" in n]
    return note


def test_the_reason_label_is_kept_per_reason() -> None:
    server = _abandoned().server
    assert server is not None and server.requests_failed == 364 and server.requests_succeeded == 5083
    assert server.failure_reasons == {"BACKEND": 0, "CANCELED": 364, "OTHER": 0, "REJECTED": 0}
    addressed = _abandoned(version="1").server  # --model-version: the version's own counters
    assert addressed is not None and addressed.failure_reasons["CANCELED"] == 364


def test_cancelled_deadline_failures_are_said_to_be_the_clients() -> None:
    note = _counter_note(_abandoned())
    assert "read 364 over the window where the client had 1673 requests fail" in note
    assert (
        "364 of the client's 1673 deadline failures were cancelled by Triton before they ran (reason CANCELED)" in note
    )
    assert "about 1310 ran anyway" in note
    assert "never reach it" not in note  # before: "the client's own failures (its deadline, …) never reach it"


def test_other_reasons_are_named_and_the_rest_explained() -> None:
    start = _START.replace('reason="REJECTED",version="1"} 0', 'reason="REJECTED",version="1"} 2')
    end = _END.replace('reason="REJECTED",version="1"} 0', 'reason="REJECTED",version="1"} 9')
    end = end.replace('reason="CANCELED",version="1"} 364', 'reason="CANCELED",version="1"} 100')
    end = end.replace(
        'nv_inference_request_success{model="seq_tuned",version="1"} 5150',
        'nv_inference_request_success{model="seq_tuned",version="1"} 3840',
    )
    note = _counter_note(_abandoned(start, end))  # 3773 answered: Triton's 3773 successes, none late
    assert "100 of the client's 1673 deadline failures were cancelled by Triton before they ran" in note
    assert "ran anyway" not in note
    assert "other failures by reason: 7 REJECTED" in note
    assert "the rest are in no failure count" in note


def test_an_older_server_without_the_label_keeps_the_old_words() -> None:
    result = _abandoned(_unlabelled(_START), _unlabelled(_END))
    assert result.server is not None and result.server.requests_failed == 364
    assert result.server.failure_reasons == {}
    note = _counter_note(result)
    assert "the client's own failures (its deadline, a lost connection, a wrong answer) never reach it" in note
    assert "reason CANCELED" not in note


def test_the_reasons_survive_the_saved_file(tmp_path: Path) -> None:
    result = _abandoned()
    LoadRun("seq_tuned", [result]).save(tmp_path)
    (loaded,) = LoadRun.load(next(tmp_path.glob("load-seq_tuned*.json"))).results
    assert loaded.server is not None and loaded.server.failure_reasons["CANCELED"] == 364
    assert _counter_note(loaded) == _counter_note(result)


def test_failures_in_no_count_are_explained_where_the_label_counts_none() -> None:
    start, end = _START, _END.replace('reason="CANCELED",version="1"} 364', 'reason="CANCELED",version="1"} 0')
    end = end.replace('version="1"} 5150', 'version="1"} 3840')  # Triton answered what the client did
    result = _abandoned(start, end)
    result.deadline_failures, result.errors = 0, {"wrong answer: 4 rows where 8 were sent": 1673}
    note = _counter_note(result)
    assert "read 0 over the window" in note and "reason" not in note
    assert "1673 requests fail: Triton counts a request its backend failed" in note
