"""`evaluate` whose server stopped answering mid-run (SIGSTOPped) said "start it again" although `serve`'s watchdog
had already restarted it: a server that answers again by the time the run fails is said to, and no restart asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.evaluator_failures import RowsSent, request_failure
from serving.server import TritonServer
from serving.triton_runner import ServerStopped

pytestmark = pytest.mark.e2e


def failure(url: str) -> str:
    sent = RowsSent([], total=64, requests=16)
    said = request_failure(ServerStopped(url, answered=3), url, "mlp", sent, request_timeout_s=30.0)
    assert said is not None
    return str(said)


def test_a_server_that_answers_again_is_not_asked_to_be_started(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    repo, _ = models.own_mlp_repo(tmp_path, ("mlp",), 8)
    url = triton_server_factory(repo).grpc_url
    assert failure(url) == (
        f"the server at {url} stopped answering during the run (after 3 of 16 batches of model 'mlp') and answers "
        "again now (restarted meanwhile?); no figure of this run counts: run evaluate again"
    )


def test_a_server_still_gone_is_asked_to_be_started(free_port_factory: Callable[[], int]) -> None:
    url = f"127.0.0.1:{free_port_factory()}"
    assert failure(url) == (
        f"the server at {url} stopped answering during the run (after 3 of 16 batches of model 'mlp'); no figure of "
        "this run counts: start it again and run evaluate again"
    )
