"""`evaluate` through a tritonserver restart (probe 58T, item 5's last): the run retried through it and ended exit 0
with the figures of an undisturbed run, saying nothing. Now one note: the server restarted (pid A → pid B), N requests
were sent again, the figures stand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

import loadtest.served_answers
from loadtest.evaluator_failures import ResentCount, restart_note
from quantserve.cli import main
from quantserve.runner import LoggedRunner
from serving.server import TritonServer

KILL_AT = 20  # the request (counted over both models, 16 each) before which tritonserver is killed: the second's 4th


def test_the_note_says_what_it_knows() -> None:
    assert restart_note("h:1", 5, 5, []) is None and restart_note("h:1", None, None, []) is None
    assert restart_note("h:1", 5, 9, [0, 1, 2, 0, 0]) == (
        "the server at h:1 restarted during the run (pid 5 → pid 9); 3 requests went unanswered and were sent again "
        "(5 resends in all, until answered); the figures stand (each row answered once)"
    )
    assert restart_note("h:1", None, 9, [0]) == (
        "the server at h:1 did not answer for a while during the run (restarted?); 1 request went unanswered and was "
        "sent again; the figures stand (each row answered once)"
    )


def test_the_count_keeps_the_clients_retry_settings() -> None:
    class Client:
        from serving.call_failures import RetryPolicy

        retry = RetryPolicy(deadline_s=7.0, max_attempts=3)

    client = Client()
    counting = ResentCount.installed(client)
    assert client.retry is counting and counting.deadline_s == 7.0 and counting.max_attempts == 3
    counting.backoff_s(0)
    counting.backoff_s(1)
    assert counting.waits == [0, 1]


@pytest.mark.e2e
def test_a_restart_during_evaluate_is_said_and_the_figures_stand(
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, data = models.own_mlp_repo(tmp_path, ("mlp", "mlp2"), 8)  # 64 rows: 16 requests of 4 a model
    server = triton_server_factory(repo, stop_timeout_s=3.0)
    killed, sent, restarts = server.pid, [0], list[threading.Thread]()

    class KillingRunner(LoggedRunner):
        def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            sent[0] += 1
            if sent[0] == KILL_AT:  # as `serve` does: killed, restarted on its ports a moment later
                server.stop(kill=True)
                restarts.append(threading.Thread(target=lambda: (time.sleep(1.0), server.start())))
                restarts[-1].start()
            return super().infer_impl(feeds)

    monkeypatch.setattr(loadtest.served_answers, "LoggedRunner", KillingRunner)
    argv = ["evaluate", "--url", server.grpc_url, "--models", "mlp2", "--reference", "mlp", "--data", str(data)]
    try:
        status = main([*argv, "--batch-size", "4", "--out", str(tmp_path / "out")])
    finally:
        for thread in restarts:
            thread.join()
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert server.pid != killed
    notes = [line for line in printed.err.splitlines() if "restarted during the run" in line]
    assert len(notes) == 1, printed.err
    assert notes[0].startswith(
        f"quantserve: note: model 'mlp2': the server at {server.grpc_url} restarted during the run (pid {killed} → "
        f"pid {server.pid}); "
    )
    assert "1 request went unanswered and was sent again" in notes[0]  # one in flight when it was killed
    assert notes[0].endswith("; the figures stand (each row answered once)")
    assert "1.0000" in printed.out  # top-1 agreement of the same weights, unchanged by the restart
