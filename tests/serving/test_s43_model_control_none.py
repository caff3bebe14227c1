"""A deploy or rollback into a repository that `quantserve serve --model-control none` serves says the change is on
disk and served from tritonserver's next start only, and serve names a model whose served versions a restart changed.

Measured (session 43, probe d): under none, deploy said "deployed … as 'm' version 2" while Triton kept serving 1; a
kill -9's restart then served version 2 (a worse INT8 build) with only "ready again"; rollback said "'m' now serves
version 1" while Triton served 2; deploy --url passed on Triton's "… not allowed if polling is enabled".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.control import _load_refusal
from serving.deploy import deploy
from serving.endpoints import ServedEndpoints, recorded
from serving.restarts import served_changes

HTTP_PORT = 18399  # only ever read from the record: nothing listens on it


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    return tmp_path / "run"


def serve_of(repo: Path, model_control: str) -> ServedEndpoints:
    """A live `quantserve serve` (this process stands in for it) of `repo`."""
    return ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", 18398, HTTP_PORT, 18397, model_control)


def test_deploy_under_none_says_the_version_is_served_from_the_next_start(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    with recorded(serve_of(repo, "none")):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"deployed {dense_build} as 'dense' version 2: {repo / 'dense' / '2'}; on disk, not served")
    assert f"(pid {os.getpid()}) runs {repo} with --model-control none" in line and "restart serve" in line


@pytest.mark.parametrize("model_control", ["explicit", "poll"])
def test_deploy_under_a_serve_that_loads_changes_says_nothing_more(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model_control: str
) -> None:
    repo = tmp_path / "repo"
    with recorded(serve_of(repo, model_control)):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"deployed {dense_build} as 'dense' version 1: {repo}/dense/1"


def test_deploy_url_to_a_none_serve_is_refused_naming_its_mode(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    with recorded(serve_of(repo, "none")):
        url = f"127.0.0.1:{HTTP_PORT}"
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "m", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.endswith(
        f"quantserve: error: {url}: quantserve serve (pid {os.getpid()}) runs with --model-control none: it loads "
        "no model after its start, so --url cannot make a change live; leave out --url and restart serve, or serve "
        "with --model-control explicit: nothing written\n"
    )
    assert not (repo / "m").exists()


def test_rollback_claims_now_serves_only_where_a_serve_loads_it(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    for _ in range(3):
        deploy(dense_build, repo, "dense")
    with recorded(serve_of(repo, "none")):
        assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"'dense''s config now names version 2 ({repo / 'dense' / '2'}), on disk, not served")
    assert "now serves" not in out
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 0  # no serve runs
    out = capsys.readouterr().out
    assert out.startswith("'dense''s config now names version 1") and f"no quantserve serve of {repo} runs" in out
    with recorded(serve_of(repo, "explicit")):  # nothing answers on its HTTP port: not claimed (session 44)
        assert main(["rollback", "--repo", str(repo), "--name", "dense", "--to", "3"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"'dense''s config now names version 3 ({repo / 'dense' / '3'}); not served after 60 s: ")
    assert "now serves" not in out and f"127.0.0.1:{HTTP_PORT}: repository index failed" in out


def test_a_restart_names_each_model_whose_served_versions_changed() -> None:
    before, after = {"m": ["1"], "k": ["9", "10"], "gone": ["1"]}, {"m": ["2"], "k": ["10", "9"], "new": ["1"]}
    why = " (changed on disk while it ran: --model-control none loads the repository only at a start)"
    assert served_changes(before, after, "none") == [
        f"now serves version 2 of 'm', was 1{why}",
        f"now serves version 1 of 'new', was not served before the restart{why}",
    ]
    assert served_changes(before, after, "explicit")[0] == "now serves version 2 of 'm', was 1"
    assert served_changes(before, after, "poll") == []  # Triton reloaded by itself: what it served is not known


def test_tritons_refusal_of_a_load_names_the_modes_that_take_none() -> None:
    reason = _load_refusal({"error": "explicit model load / unload is not allowed if polling is enabled"})
    assert reason.startswith("the server takes no model loads: it runs with --model-control-mode none or poll")
    assert _load_refusal({"error": "failed to load 'm'"}) == "failed to load 'm'"


def test_the_record_holds_the_model_control_and_reads_an_older_one_as_explicit(tmp_path: Path) -> None:
    record = endpoints.write_record(serve_of(tmp_path, "none"))
    assert endpoints.find_serving_repository(tmp_path) == serve_of(tmp_path, "none")
    older = {k: v for k, v in asdict(serve_of(tmp_path, "none")).items() if k != "model_control"}
    record.write_text(json.dumps(older))
    assert endpoints.find_serving_repository(tmp_path) == serve_of(tmp_path, "explicit")
