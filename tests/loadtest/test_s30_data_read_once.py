"""A loadtest reads its --data file once in its own process (session 30, issue 11): it read it six times before its
first request (every step's settings checked twice, the server check twice, the run's identity), 0.8-1.2 s of a
64 MB file here. A real server; Locust's run stands in (its processes read the file themselves, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import loadtest_models as models
import numpy as np
import pytest

import loadtest.harness as harness
import quantserve.data as data_module
from quantserve import cli
from quantserve.errors import QuantserveError

STOP = "Locust would start here"


def test_a_loadtest_reads_its_data_file_once_before_locust(
    tmp_path: Path,
    triton_server_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from serving.deploy import deploy

    build = models.make_build_dir(tmp_path / "build" / "mlp")
    deploy(build, tmp_path / "repo", "mlp", max_batch=8, max_queue_delay_us=0, instances=1)
    server = triton_server_factory(tmp_path / "repo")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((64, models.FEATURES), np.float32))
    reads: list[Path] = []
    read_arrays = data_module._read_arrays

    def counted(path: Path, *args: Any) -> Any:
        reads.append(Path(path))
        return read_arrays(path, *args)

    def no_locust(*args: Any) -> Any:
        raise QuantserveError(STOP)

    monkeypatch.setattr(data_module, "_read_arrays", counted)
    monkeypatch.setattr(harness, "_run_locust", no_locust)
    argv = ["loadtest", "--url", server.grpc_url, "--metrics-url", server.metrics_url, "--model", "mlp"]
    assert cli.main([*argv, "--data", str(data), "--out", str(tmp_path / "out"), "--duration", "2s"]) == 2
    assert capsys.readouterr().err == f"quantserve: error: {STOP}\n"
    assert reads == [data]
    np.savez(data, x=np.ones((32, models.FEATURES), np.float32))  # another file at that path: read afresh
    assert cli.main([*argv, "--data", str(data), "--out", str(tmp_path / "out2"), "--duration", "2s"]) == 2
    assert capsys.readouterr().err == f"quantserve: error: {STOP}\n"
    assert reads == [data, data]
