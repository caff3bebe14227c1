"""A tritonserver shutting down during the window is named as a server that stopped, not as its model unloaded.

Session 41: `quantserve serve` stopped by SIGTERM 5.2 s into a 16 s open loop; Triton, shutting down, answered 31
requests "Server is stopping" and 289 "unknown model" for ~10 s and listed every model at zero at the window's end,
the same pid still listening. The note said "model 'digits_int8' was unloaded during the window".
"""

from __future__ import annotations

import numpy as np

from loadtest.partial_counters import server_shutting_down
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import Window
from loadtest.results import LoadResult
from loadtest.triton_metrics import COUNTERS, VERSIONS

STOPPING = (
    "TritonRequestFailed('[StatusCode.UNAVAILABLE] [request id: <id_unknown>] Server is stopping, scheduler for "
    "model has stopped accepting new inference requests')"
)
UNKNOWN = "TritonRequestFailed(\"[StatusCode.NOT_FOUND] Request for unknown model: 'm' has no available versions\")"


def _model(success: float) -> dict:
    counters = {name: success for name in COUNTERS}
    return {**counters, VERSIONS: {"1": dict(counters)}}


def _window(before: dict[str, float], after: dict[str, float]) -> Window:
    return Window(0.0, 16.0, {k: _model(v) for k, v in before.items()}, {k: _model(v) for k, v in after.items()})


def test_a_server_refusing_as_it_stops_is_shutting_down() -> None:
    window = _window({"m": 13543, "other": 450}, {"m": 0, "other": 0})
    said = server_shutting_down(4242, {UNKNOWN: 289, STOPPING: 31}, window, "m", lambda: False)
    assert said is not None
    assert "pid 4242" in said and "31 requests with 'Server is stopping'" in said
    assert "every model's counters went back to zero at once" in said and "liveness" in said
    result = LoadResult(
        model="m", url="127.0.0.1:1", mode="closed", users=1, window_s=16.0, requests=480, failed_requests=320,
        throughput_rps=10.0, inferences_per_s=10.0, latency=LatencySummary.from_samples(np.zeros(0)),
        server_restarted=said,
    )  # fmt: skip
    note = result.restart_note() or ""
    assert "tritonserver stopped during the measured window" in note and "unloaded" not in note


def test_counters_at_zero_and_no_liveness_is_shutting_down() -> None:
    for before, after in (({"m": 100, "other": 5}, {"m": 0, "other": 0}), ({"m": 100}, {"m": 0})):
        said = server_shutting_down(7, {UNKNOWN: 10}, _window(before, after), "m", lambda: False)
        assert said is not None and "it no longer answered a liveness check" in said


def _never_asked() -> bool:
    raise AssertionError("the liveness check is asked only where the model's counters went back")


def test_a_model_unloaded_from_a_live_server_is_not_a_server_stopping() -> None:
    kept = _window({"m": 100, "other": 5}, {"m": 0, "other": 9})  # the other model went on counting
    assert server_shutting_down(7, {UNKNOWN: 10}, kept, "m", lambda: True) is None
    alone = _window({"m": 100}, {"m": 0})
    assert server_shutting_down(7, {UNKNOWN: 10}, alone, "m", lambda: True) is None
    steady = _window({"m": 100, "other": 5}, {"m": 180, "other": 5})  # nothing went back, nothing refused
    assert server_shutting_down(7, {}, steady, "m", _never_asked) is None
