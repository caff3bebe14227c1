"""`evaluate --request-timeout` is a request's deadline, not the control calls' before any request: at 3 ms on a busy
machine a ready model read "not ready after 0 s", its config "DEADLINE_EXCEEDED", and a request's timeout "version 1
stopped being served during the run", none naming the flag (session 40). A deadline no request can meet (1 µs) shows
it on any machine: the model is found ready, and the one line names --request-timeout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from quantserve.cli import main

pytestmark = pytest.mark.e2e


def test_a_request_deadline_too_short_is_named_not_read_as_a_model_not_ready(
    tmp_path: Path, triton_server_factory: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.deploy import deploy

    weights = models.mlp_weights()
    data = models.labeled_data(32, weights, seed=3).save(tmp_path / "data.npz")
    build = models.make_build_dir(tmp_path / "build" / "mlp", weights=weights)
    for name in ("m", "r"):
        deploy(build, tmp_path / "repo", name, max_batch=16)
    server = triton_server_factory(tmp_path / "repo")
    url = server.grpc_url  # type: ignore[attr-defined]
    argv = ["evaluate", "--url", url, "--data", str(data), "--models", "m,r", "--reference", "r"]
    code = main([*argv, "--out", str(tmp_path / "out"), "--request-timeout", "0.000001"])
    err = capsys.readouterr().err
    assert code != 0
    assert "not ready" not in err and "stopped being served" not in err and "config of" not in err
    assert "--request-timeout" in err, err
    assert main([*argv, "--out", str(tmp_path / "ok")]) == 0, "the server and model are fine"
