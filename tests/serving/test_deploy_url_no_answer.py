"""`deploy --url` to an address where no Triton answers is refused before anything is written, within seconds.

A typo'd URL whose host accepted the connection and never answered: the version was written first, the `serve`
watching the repository loaded it, and 123 s later the deploy withdrew it as "loading failed (timed out)"; a refused
connection took 2 s, and also wrote the version first.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.cli import main
from quantserve.cli.commands.deploy import LIVE_CHECK_S


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) and never answers a byte."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("port_fixture", "said"),
    [("silent_port", "the Triton server at {url} is hung: "), ("closed_port", "no Triton server answers at {url} (")],
)
def test_deploy_url_where_no_server_answers_writes_nothing(
    dense_build: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    port_fixture: str,
    said: str,
) -> None:
    url = f"127.0.0.1:{request.getfixturevalue(port_fixture)}"
    repo = tmp_path / "repo"
    started = time.monotonic()
    status = main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--url", url])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("quantserve: error: " + said.format(url=url)), err
    assert err.endswith(": nothing deployed\n") and err.count("\n") == 1, err
    assert not repo.exists()  # not even the repository folder
    assert took < LIVE_CHECK_S + 3, took


def test_rollback_url_where_no_server_answers_changes_nothing(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], silent_port: int
) -> None:
    """`rollback --url` to a silent host: refused within seconds with the versions as they were (it waited on the
    control client's 120 s timeout)."""
    repo = tmp_path / "repo"
    for _ in range(2):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    before = sorted(p.name for p in (repo / "dense").iterdir())
    config = (repo / "dense" / "config.pbtxt").read_text()
    capsys.readouterr()
    url = f"127.0.0.1:{silent_port}"
    started = time.monotonic()
    status = main(["rollback", "--repo", str(repo), "--name", "dense", "--url", url])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"quantserve: error: the Triton server at {url} is hung: "), err
    assert err.endswith(": nothing rolled back\n"), err
    assert sorted(p.name for p in (repo / "dense").iterdir()) == before
    assert (repo / "dense" / "config.pbtxt").read_text() == config
    assert took < LIVE_CHECK_S + 3, took
