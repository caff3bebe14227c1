"""Every gRPC DEADLINE_EXCEEDED is a deadline failure, and the deadline line says how many ended before the
client's own deadline had passed (0.99 of --request-timeout).

Measured (session 45): a Python model sleeping 0.2 s a batch of 8, 32 users, --request-timeout 0.5: 845 requests
ended DEADLINE_EXCEEDED, one after 491 ms; that one was filed as a failure of another kind (its note said 841 of
842 in the window hit the deadline). A queue policy's timeout ("Request timeout expired") is UNAVAILABLE: a refusal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from test_server_counters import client_result

from loadtest.recording_files import DEADLINE_COLUMN, EARLY_DEADLINE

# locust (which loadtest.grpc_user and loadtest.recording import) patches this process's threads: a child runs them
CHILD = textwrap.dedent(
    """
    import json, types
    from tritonclient.utils import InferenceServerException
    from loadtest import recording
    from loadtest.closed_loop_user import TritonGrpcUser
    from loadtest.grpc_user import DEADLINE_STATUS

    user = types.SimpleNamespace(timeout_s=0.5)
    kinds = []
    for status, waited_s in ((DEADLINE_STATUS, 0.491), (DEADLINE_STATUS, 0.5), ("StatusCode.UNAVAILABLE", 0.491)):
        failure = InferenceServerException("Deadline Exceeded", status=status)
        kind = TritonGrpcUser._past_deadline(user, failure, [10.0, 10.0 + waited_s])
        kinds.append(kind)
        recording.record_request(waited_s * 1000, failure, {"ended_at": 1.0, "client_deadline": kind})
    print(json.dumps([kinds, [list(row) for row in recording._samples]]))
    """
)


def test_a_deadline_exceeded_before_the_clients_deadline_is_recorded_as_an_early_deadline_failure() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    kinds, rows = json.loads(child.stdout.splitlines()[-1])
    assert kinds == [EARLY_DEADLINE, 1.0, 0.0]  # the last, a queue timeout's UNAVAILABLE, is a refusal
    assert [row[DEADLINE_COLUMN] for row in rows] == [EARLY_DEADLINE, 1.0, 0.0]


def test_the_deadline_line_counts_them_all_and_names_the_early_ones() -> None:
    result = client_result(845, failed=845, users=32)
    result.deadline_failures, result.early_deadline_failures, result.request_timeout_s = 845, 1, 0.5
    line = result.deadline_line() or ""
    assert line.startswith(
        "m @ 32 users: 845 requests hit the client's 0.5 s deadline (--request-timeout) (1 of them ended with "
        "DEADLINE_EXCEEDED before it had passed on the client's clock: the server's side, passed the deadline by gRPC, "
        "may give up first)"
    )
    result.early_deadline_failures = 0
    assert "before it" not in (result.deadline_line() or "")
