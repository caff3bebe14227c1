"""Zero-downtime updates: deploy a new version and roll back while Locust loads the model; no request fails.

The server runs under `serving.supervisor.Supervisor` with explicit model control, as `quantserve
serve` runs it; deploy and rollback go through the CLI (`--url` loads at once and waits), and a
last deploy without `--url` is picked up by the supervisor's repository watcher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serving_models import make_build_dir

from loadtest.harness import run_load
from quantserve.cli import main
from serving.client import TritonGrpcClient
from serving.server import ServerOptions
from serving.supervisor import Supervisor

pytestmark = pytest.mark.e2e


@pytest.fixture
def supervised(tmp_path: Path, dense_build: Path) -> Iterator[Supervisor]:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]) == 0
    options = ServerOptions.on_free_ports(
        repo, model_control="explicit", load_models=("*",), log_path=tmp_path / "triton.log"
    )
    supervisor = Supervisor(options, poll_s=0.3, log=lambda line: None)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    watcher.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
        watcher.join(timeout=30)


def served_versions(url: str) -> list[str]:
    with TritonGrpcClient(url, timeout_s=10) as client:
        meta = client._client.get_model_metadata("dense", as_json=True)
    return sorted(meta.get("versions", []))


def wait_for_versions(url: str, expected: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while served_versions(url) != expected:
        assert time.monotonic() < deadline, f"served {served_versions(url)}, expected {expected}"
        time.sleep(0.2)


def test_deploy_and_rollback_under_load_fail_no_request(supervised: Supervisor, tmp_path: Path) -> None:
    server = supervised.server
    repo, http = server.repo, server.control_url
    data = tmp_path / "load.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32))
    v2 = make_build_dir(tmp_path / "build" / "v2")
    results: list[object] = []
    load = threading.Thread(
        target=lambda: results.append(run_load(server.grpc_url, "dense", data, 4, 20.0, tmp_path / "load")),
        daemon=True,
    )
    assert served_versions(server.grpc_url) == ["1"]
    load.start()
    time.sleep(4)
    assert main(["deploy", str(v2), "--repo", str(repo), "--name", "dense", "--max-batch", "8", "--url", http]) == 0
    assert served_versions(server.grpc_url) == ["2"]
    time.sleep(3)
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--url", http]) == 0
    assert served_versions(server.grpc_url) == ["1"]
    time.sleep(2)
    # No --url: the supervisor sees the new version folder and reloads, as under `quantserve serve`.
    assert main(["deploy", str(v2), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]) == 0
    wait_for_versions(server.grpc_url, ["3"])
    load.join(timeout=120)
    assert results, "the load run did not finish"
    result = results[0]
    assert result.requests > 50, result  # type: ignore[attr-defined]
    assert result.failed_requests == 0, result.errors  # type: ignore[attr-defined]
    print(f"\nlive updates under load: {result.requests} requests, {result.failed_requests} failed")  # type: ignore[attr-defined]
    assert sorted(p.name for p in (repo / "dense").iterdir() if p.name.isdigit()) == ["1", "2", "3"]


def test_a_pinned_runner_names_the_version_that_stopped_being_served(supervised: Supervisor, tmp_path: Path) -> None:
    """evaluate asks for the version served when it starts: a deploy landing mid-run fails it in one line instead of
    mixing two versions' answers into one figure (top-1 agreement 0.74 that described neither version)."""
    from quantserve.errors import QuantserveError
    from serving.triton_runner import TritonRunner

    server = supervised.server
    rows = {"x": np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)}
    with TritonRunner(server.grpc_url, "dense", pin_version=True) as runner:
        assert runner.version == "1" and runner.infer(rows)["probs"].shape[0] == 4
        v2 = make_build_dir(tmp_path / "build" / "v2")
        deploy = ["deploy", str(v2), "--repo", str(server.repo), "--name", "dense", "--max-batch", "8"]
        assert main([*deploy, "--url", server.control_url]) == 0
        with pytest.raises(QuantserveError, match="model 'dense' version 1 stopped being served during the run"):
            runner.infer(rows)
    with TritonRunner(server.grpc_url, "dense") as unpinned:  # without pinning: whatever is served now
        assert unpinned.version == "" and unpinned.infer(rows)["probs"].shape[0] == 4


def test_rollback_without_an_older_version_is_one_clear_error(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 2
    assert "no version older than 1 to roll back to" in capsys.readouterr().err
    assert main(["rollback", "--repo", str(repo), "--name", "../etc", "--to", "1"]) == 2
    assert "invalid model name '../etc'" in capsys.readouterr().err
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--to", "../1"]) == 2
    assert "invalid model version '../1'" in capsys.readouterr().err


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(supervised: Supervisor, tmp_path: Path) -> None:
    import shutil

    server = supervised.server
    broken = server.repo / "dense" / "2"
    lines: list[str] = []
    supervised.log = lines.append
    shutil.copytree(server.repo / "dense" / "1", tmp_path / "staged")
    (tmp_path / "staged" / "model.py").write_text("raise RuntimeError('weights are corrupt')\n")
    (tmp_path / "staged").rename(broken)
    deadline = time.monotonic() + 60
    while not lines:  # the supervisor's watcher thread sees the new folder and tries to load it
        assert time.monotonic() < deadline, "the watcher did not try the new version"
        time.sleep(0.2)
    assert "reload failed, previous versions keep serving" in lines[0] and "weights are corrupt" in lines[0]
    assert served_versions(server.grpc_url) == ["1"]
    with TritonGrpcClient(server.grpc_url, timeout_s=10) as client:
        assert client.infer("dense", {"x": np.zeros((2, 8), np.float32)})["probs"].shape == (2, 4)
