"""The client's own per-request deadline (`loadtest --request-timeout`) and what a request's latency measures.

Probed against a segmentation model answering 350 MB per request: the deadline was a hard-coded 30 s no flag could
raise, the one request that passed it was called "1 outage(s), the longest 14.1 s without a success" while answers
kept coming, and successes were timed at 41 s behind that 30 s gRPC deadline (the clock ran in the greenlet that
waited on the thread pool, not around the call).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.recording_files import DEADLINE_COLUMN, EARLY_DEADLINE, SAMPLE_COLUMNS
from loadtest.timeline import outages
from quantserve.cli import main
from serving.server import TritonServer


def _rows(*rows: tuple[float, float, float, float]) -> np.ndarray:
    """Sample rows from (end s, latency ms, ok, failed by the client's deadline)."""
    samples = np.zeros((len(rows), SAMPLE_COLUMNS))
    for i, (end, latency, ok, deadline) in enumerate(rows):
        samples[i, [0, 1, 2, DEADLINE_COLUMN]] = end, latency, ok, deadline
    return samples


def test_a_deadline_passed_while_answers_kept_coming_is_no_outage() -> None:
    """The probe's run: a success at 27.6 s, one request given up at its 30 s deadline, the next success at 41.7 s.
    A success ended during the failed request's own 30 s, so the server was slow on it, not down."""
    slow = _rows((27.6, 27500.0, 1, 0), (30.0, 30000.0, 0, 1), (41.7, 41400.0, 1, 0), (41.8, 41500.0, 1, 0))
    assert outages(slow, 0.0, 47.5) == []
    # the same failure refused by the server (not the client's deadline): an outage, as before
    refused = slow.copy()
    refused[1, DEADLINE_COLUMN] = 0.0
    assert [(o.start_s, o.end_s) for o in outages(refused, 0.0, 47.5)] == [(27.6, 41.7)]
    # deadlines passed with nothing answered during them (a hung server): still an outage
    hung = _rows((5.0, 500.0, 1, 0), (8.0, 2000.0, 0, 1), (10.0, 2000.0, 0, 1), (12.0, 100.0, 1, 0))
    assert [(o.start_s, o.end_s, o.failed_requests) for o in outages(hung, 0.0, 15.0)] == [(5.0, 12.0, 2)]


CLOCK_CHILD = textwrap.dedent(
    """
    import json, types
    import gevent
    from gevent import monkey
    from tritonclient.utils import InferenceServerException
    import loadtest.closed_loop_user as closed
    import loadtest.grpc_user as users

    real_sleep = monkey.get_original("time", "sleep")
    fired = []

    class Client:
        def __init__(self, wait_s, fail=None):
            self.wait_s, self.fail = wait_s, fail
        def infer(self, model, inputs, client_timeout):
            real_sleep(self.wait_s)  # the server's time on the request
            if self.fail:
                raise InferenceServerException(self.fail, status="StatusCode.DEADLINE_EXCEEDED")
            return types.SimpleNamespace(get_response=lambda: types.SimpleNamespace(raw_output_contents=[b"1234"]))

    user = object.__new__(closed.TritonGrpcUser)
    user.model, user.request_batch, user.timeout_s, user.requests = "m", 1, 0.3, [[]]
    users._batched["m"] = False
    user.environment = types.SimpleNamespace(
        events=types.SimpleNamespace(request=types.SimpleNamespace(fire=lambda **kw: fired.append(kw)))
    )
    user._order, user._pool = iter(lambda: 0, None), users.blocking_call_pool(extra_threads=1)
    HOLD_S = {hold_s}
    for client in (Client(0.2), Client(0.3, "Deadline Exceeded"), Client(0.05, "Deadline Exceeded")):
        user._client = client
        caller = gevent.spawn(user.infer)
        gevent.sleep(0.01)  # the call is in its thread; now the hub is held for HOLD_S, as by a busy process
        real_sleep(HOLD_S)
        caller.join()
    print(json.dumps([[kw["response_time"], kw["context"].get("client_deadline", False)] for kw in fired]))
    """
)
# The hub's hold: a latency read around the hand-off (the bug) reads at least this; the call's own span, at most
# 0.3 s here. Held 1 s with bounds of 0.6-0.7 s, the call had 0.4 s of slack on a loaded 2-core machine (session 42);
# held 2 s, a bound of 1.5 s leaves it 1.2 s and stays 0.5 s below the bug's reading.
HOLD_S = 2.0
BOUND_MS = 1500.0


@pytest.mark.serial
def test_latency_is_the_call_itself_and_the_clients_deadline_is_told_apart() -> None:
    """A 0.2 s call whose answer waited 2 s for the waiting greenlet to wake is timed 0.2 s, not 2 s; a call failed
    with DEADLINE_EXCEEDED after the 0.3 s --request-timeout is the client's deadline, one failed so early is a
    deadline failure too, recorded as early (session 45: it had been filed as a failure of another kind)."""
    child = subprocess.run(
        [sys.executable, "-c", CLOCK_CHILD.replace("{hold_s}", str(HOLD_S))], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    (ok_ms, ok_deadline), (late_ms, late_deadline), (early_ms, early_deadline) = json.loads(
        child.stdout.splitlines()[-1]
    )
    assert 190 <= ok_ms < BOUND_MS and not ok_deadline, ok_ms
    assert 290 <= late_ms < BOUND_MS and late_deadline, late_ms
    assert early_ms < BOUND_MS and early_deadline == EARLY_DEADLINE and late_deadline == 1.0, early_ms


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_request_timeout_that_is_no_positive_number_is_refused(
    timeout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["loadtest", "--url", "127.0.0.1:1", "--model", "m", "--data", str(tmp_path / "x.npz")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--request-timeout", timeout]) == 2
    assert f"--request-timeout must be a positive number of seconds, got {float(timeout):g}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any probe or file


SLEEP_S = 1.0  # each batch of the slow model


@pytest.fixture(scope="module")
def slow_server(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    """A server of its own with `mlp_slow`: the test MLP, its Python backend sleeping SLEEP_S a batch."""
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("deadline"), ("mlp_slow",), 8)
    model_py = repo / "mlp_slow" / "1" / "model.py"
    head = "    def execute(self, requests: list[Any]) -> list[Any]:\n"
    assert head in model_py.read_text()
    model_py.write_text(model_py.read_text().replace(head, f"{head}        import time; time.sleep({SLEEP_S})\n"))
    return triton_server_factory(repo), data


@pytest.mark.e2e
@pytest.mark.serial
def test_loadtest_request_timeout_reaches_the_users_and_its_failures_are_named(
    slow_server: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--request-timeout 0.4 against a 1 s model: every request fails by the client's deadline (at 0.4 s, not the
    old fixed 30 s, which no 3 s window would reach), and one note says so and what to do."""
    server, data = slow_server
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp_slow", "--data", str(data), "--users", "1"]
    argv += ["--duration", "3s", "--request-timeout", "0.4", "--out", str(tmp_path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    result = LoadRun.load(tmp_path / "load-mlp_slow.json").results[0]
    assert result.failed_requests >= 3 and result.deadline_failures == result.failed_requests, result
    assert result.request_timeout_s == 0.4
    count = result.deadline_failures
    assert (
        f"note: mlp_slow @ 1 users: {count} requests hit the client's 0.4 s deadline (--request-timeout): they were "
        "slow, not refused; raise it or send fewer samples a request (--request-batch)" in out
    ), out
