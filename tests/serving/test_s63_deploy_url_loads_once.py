"""One `deploy --url` against a running `quantserve serve` loads the new version once.

Measured (session 63, probe D): tritonserver's log showed "loading: m:7" three times for one deploy, and the live
instance was unloaded twice for nothing: deploy's own load over the URL, then the supervisor's repository watcher
loading the same change again, then once more for the old version folder deploy pruned afterwards. Each load starts
the model's processes anew (seconds of doubled memory on a big model).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from serving.server import ServerOptions
from serving.supervisor import Supervisor

pytestmark = pytest.mark.e2e


@pytest.fixture
def supervised(tmp_path: Path, dense_build: Path) -> Iterator[tuple[Supervisor, list[str]]]:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]) == 0
    options = ServerOptions.on_free_ports(
        repo, model_control="explicit", load_models=("*",), log_path=tmp_path / "triton.log"
    )
    said: list[str] = []
    supervisor = Supervisor(options, poll_s=0.2, log=said.append)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    watcher.start()
    try:
        yield supervisor, said
    finally:
        supervisor.stop()
        watcher.join(timeout=30)


def loads_of(log: Path, model: str, version: int) -> int:
    return len(re.findall(rf'"loading: {model}:{version}"', log.read_text(errors="replace")))


def settle(supervisor: Supervisor, s: float = 3.0) -> None:
    """Give the watcher several polls to see whatever the command changed, and its loads time to end."""
    time.sleep(s)
    for thread in list(supervisor._loading.values()):
        thread.join(timeout=60)


def test_deploy_url_loads_the_new_version_once(supervised: tuple[Supervisor, list[str]], tmp_path: Path) -> None:
    supervisor, said = supervised
    server, log = supervisor.server, tmp_path / "triton.log"
    repo, http = server.repo, server.control_url
    v2 = make_build_dir(tmp_path / "build" / "v2")
    deploy = ["deploy", str(v2), "--repo", str(repo), "--name", "dense", "--max-batch", "8", "--url", http]
    assert main(deploy) == 0
    settle(supervisor)
    assert server.control().ready_versions("dense") == [2]
    assert loads_of(log, "dense", 2) == 1, said
    # a rollback over the URL loads version 1 once too, and a deploy after it version 3 once
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--url", http]) == 0
    settle(supervisor)
    assert server.control().ready_versions("dense") == [1]
    assert loads_of(log, "dense", 1) == 2, said  # the start's, the rollback's
    # and one that prunes version 1 (--keep-versions 2) loads version 3 once: no load for the folder pruned
    assert main([*deploy, "--keep-versions", "2"]) == 0
    assert not (repo / "dense" / "1").exists()
    settle(supervisor)
    assert server.control().ready_versions("dense") == [3]
    assert loads_of(log, "dense", 3) == 1, said
    assert "model 'dense' loaded over its URL: versions [3] live" in said
