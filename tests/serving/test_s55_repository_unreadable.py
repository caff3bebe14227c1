"""A server whose repository folder cannot be read (moved away, a network filesystem's blip) keeps serving what it
loaded, and clients go on through each model's own readiness and metadata.

Measured (session 55): with the folder moved away, `serve` said the loaded models keep serving and loadtest confirmed
it, but `infer` and `evaluate`, even of `NAME@1`, stopped on "repository index failed: [StatusCode.INTERNAL] failed
to open directory …": the runner listed the ready versions from Triton's repository index, which reads the folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.deploy import deploy
from serving.server import TritonServer
from serving.triton_runner import TritonRunner


@pytest.fixture
def moved_away(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> Iterator[tuple[str, Path]]:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    server = triton_server_factory(repo)
    repo.rename(tmp_path / "away")
    try:
        yield server.grpc_url, repo
    finally:
        server.stop()


def test_a_loaded_model_and_its_version_still_answer(moved_away: tuple[str, Path]) -> None:
    url, _ = moved_away
    x = np.ones((3, 8), np.float32)
    for version in ("", "1"):
        with TritonRunner(url, "dense", version, timeout_s=10.0, pin_version=True) as runner:
            assert runner.version == "1"
            assert runner.infer({"x": x})["probs"].shape == (3, 4)


def test_a_model_not_served_names_the_folder_that_cannot_be_read(moved_away: tuple[str, Path]) -> None:
    url, repo = moved_away
    with TritonGrpcClient(url, timeout_s=10.0) as client:
        assert client.ready_versions("dense") == ["1"]
        for ask in (lambda: client.ready_versions("other"), lambda: client.wait_model_ready("other", 10.0)):
            with pytest.raises(QuantserveError) as refused:
                ask()
            said = str(refused.value)
            assert said.startswith(f"{url}: model 'other' is not ")
            assert said.endswith(
                f"the server's repository folder {repo} cannot be read (moved away, unmounted, a network filesystem's "
                "blip?): the models it loaded keep serving, but none can be listed, loaded or unloaded until it is back"
            )


def test_loadtest_of_a_model_not_served_names_the_folder_that_cannot_be_read(
    moved_away: tuple[str, Path], tmp_path: Path
) -> None:
    from loadtest import step_checks
    from loadtest.load_pattern import ClosedLoop
    from loadtest.load_settings import LoadSettings

    url, repo = moved_away
    with pytest.raises(QuantserveError) as refused:
        step_checks.check_model_ready(LoadSettings(url, "other", tmp_path / "d.npz", ClosedLoop(1), 5.0))
    assert str(refused.value) == (
        f"model 'other' is not ready on {url}, and the server's repository folder {repo} cannot be read (moved away, "
        "unmounted, a network filesystem's blip?): the models it loaded keep serving, but none can be listed, loaded "
        "or unloaded until it is back"
    )
