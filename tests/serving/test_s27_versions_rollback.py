"""A version rolled back (unloaded) mid-run, against a real tritonserver: Triton answers a request for it
`UNAVAILABLE: Request for unknown model: 'm' version 2 is not at ready state` in milliseconds, which the client sent
again up to 20 times within the request timeout (evaluate named the rollback ~21 s late); and `infer`, which did not
pin the version, saved one file of two versions' answers (11 664 rows of v5, 4 336 of v4) and exited 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from serving.deploy import deploy
from serving.server import TritonServer
from serving.triton_runner import TritonRunner, VersionGone

pytestmark = pytest.mark.e2e


def two_versions(tmp_path: Path, start: Callable[..., TritonServer]) -> TritonServer:
    """Model 'm' versions 1 and 2 on disk, version 2 served (explicit model control, as `serve` runs it)."""
    repo = tmp_path / "repo"
    build = make_build_dir(tmp_path / "build")
    deploy(build, repo, "m", max_batch=8)
    deploy(build, repo, "m", max_batch=8)
    return start(repo, model_control="explicit", load_models=("*",))


def roll_back(server: TritonServer) -> None:
    assert main(["rollback", "--repo", str(server.repo), "--name", "m", "--url", server.control_url]) == 0


def test_a_pinned_version_rolled_back_is_named_after_one_attempt(
    triton_server_factory: Callable[..., TritonServer], tmp_path: Path
) -> None:
    server = two_versions(tmp_path, triton_server_factory)
    rows = {"x": np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)}
    runner = TritonRunner(server.grpc_url, "m", timeout_s=30.0, pin_version=True)
    with runner:
        assert runner.version == "2" and runner.infer(rows)["probs"].shape == (4, 4)
        roll_back(server)
        assert runner._client is not None
        grpc, attempts = runner._client._client, []
        sent = grpc.infer

        def counted(*args: Any, **kwargs: Any) -> Any:
            attempts.append(args)
            return sent(*args, **kwargs)

        grpc.infer = counted
        with pytest.raises(VersionGone) as gone:
            runner.infer(rows)
    assert str(gone.value) == (
        f"{server.grpc_url}: model 'm' version 2 stopped being served during the run (after 4 rows answered; a deploy "
        "or rollback meanwhile?); answers of two versions would be mixed, so none count: run it again"
    )
    assert "version 2 is not at ready state" in str(gone.value.__cause__)
    assert len(attempts) == 1


@pytest.mark.parametrize("named", [[], ["--model-version", "2"]], ids=["pinned", "named"])
def test_infer_across_a_rollback_fails_in_one_line_and_saves_nothing(
    triton_server_factory: Callable[..., TritonServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    named: list[str],
) -> None:
    """Pinned to the version served at the start, or named: a named version read Triton's own line (probe pl7)."""
    server = two_versions(tmp_path, triton_server_factory)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.random.default_rng(1).normal(size=(32, 8)).astype(np.float32))
    sent = TritonRunner._request
    rolled: list[int] = []  # the rows of the request after which version 1 was served again

    def answer_then_roll_back(runner: TritonRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        answer = sent(runner, feeds)
        if not rolled:  # after the first request of four: the rest would be version 1's answers
            roll_back(server)
            rolled.append(len(feeds["x"]))
        return answer

    monkeypatch.setattr(TritonRunner, "_request", answer_then_roll_back)
    out = tmp_path / "out.npz"
    args = ["infer", "--url", server.grpc_url, "--model", "m", "--data", str(data), "--out", str(out)]
    assert main([*args, *named, "--batch-size", "8", "--timeout", "30"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {server.grpc_url}: model 'm' version 2 stopped being served after 8 of 32 rows were "
        "answered (a deploy or rollback meanwhile?): answers of two versions would be mixed, so none are printed or "
        "saved; run infer again\n"
    )
    assert rolled == [8] and not out.exists()
