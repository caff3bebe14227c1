"""A rollback without --url under `quantserve serve --model-control poll` says "now serves" only once Triton serves
that version alone: it said so at once while Triton, polling its repository every 15 s, served the newer version
(session 44). Under explicit model control serve's watcher loads it; the line waits for that too."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.deploy import deploy
from serving.endpoints import ServedEndpoints, endpoints_of, recorded
from serving.server import TritonServer


@pytest.mark.e2e
@pytest.mark.slow
def test_rollback_under_poll_claims_the_version_once_triton_serves_it(
    dense_build: Path,
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    repo = tmp_path / "repo"
    for _ in range(2):
        deploy(dense_build, repo, "dense", max_batch=8)
    server = triton_server_factory(repo, model_control="poll")
    control = server.control()
    assert control.ready_versions("dense") == [2]
    with recorded(endpoints_of(server)):  # this process stands in for the serve that runs the server
        assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0
        served_when_said = control.ready_versions("dense")
    out = capsys.readouterr().out
    assert served_when_said == [1], out
    assert out.startswith(f"'dense' now serves version 1 ({repo / 'dense' / '1'}; READY alone on http://"), out


def test_a_rollback_the_server_does_not_serve_puts_the_config_back(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback to a version the server did not load (its file damaged on disk) left the config pinned to it: the
    next tritonserver start served no version of the model (session 44). Here nothing answers on the recorded
    serve's HTTP port, so nothing confirms it."""
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    repo = tmp_path / "repo"
    for _ in range(2):
        deploy(dense_build, repo, "dense", max_batch=8)
    config = (repo / "dense" / "config.pbtxt").read_bytes()
    record = ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", 18398, 18399, 18397, "explicit")
    with recorded(record):
        assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("'dense''s config now names version 1") and "not served after 60 s" in out
    assert out.rstrip().endswith(f"{repo / 'dense' / 'config.pbtxt'} put back, the server keeps what it served")
    assert (repo / "dense" / "config.pbtxt").read_bytes() == config


def test_a_rollback_to_a_build_that_missed_its_checks_warns_as_deploy_does(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy v1, v2 (an INT8 build shipped past its drift budget), rollback, v3, rollback: the default target is
    v2 again, the newest below the one served; it returned to it in silence (session 44)."""
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense", max_batch=8)
    manifest = repo / "dense" / "2" / "manifest.json"
    record = json.loads(manifest.read_text())
    record["verification"] = {
        "holds": False,
        "violations": [{"line": "output 'y': top-1 agreement 0.95 < budget 0.99"}],
    }
    manifest.write_text(json.dumps(record))
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0  # no serve runs: the config alone
    err = capsys.readouterr().err
    assert err == (
        f"warning: version 2 ({repo / 'dense' / '2'}) missed its drift budget row by row: output 'y': top-1 agreement "
        "0.95 < budget 0.99; shipped with --keep-failing: evaluate it through the server first\n"
    )
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--to", "1"]) == 0
    assert capsys.readouterr().err == ""
