"""A server that takes connections and answers nothing (a SIGSTOPped tritonserver) is named hung, not absent, by the
clients that wait on it (session 45): loadtest said "no Triton server answers" after 12 s and infer after 26.6 s, as
if nothing ran there, while evaluate already said "hung, not gone"."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from quantserve import cli
from quantserve.errors import QuantserveError
from serving.call_failures import no_answer_line
from serving.client import TritonGrpcClient

HUNG = "is hung: its port takes connections but it answers nothing"


def _closed_port() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{free.getsockname()[1]}"  # closed on return: nothing listens there


def test_a_silent_port_is_hung_and_a_closed_one_has_no_server(silent_port: str) -> None:
    assert HUNG in no_answer_line(silent_port)
    closed = _closed_port()
    assert no_answer_line(closed) == f"no Triton server answers at {closed}"


def test_waiting_on_a_model_of_a_hung_server_names_it_hung(silent_port: str) -> None:
    with TritonGrpcClient(silent_port, timeout_s=0.5) as client, pytest.raises(QuantserveError) as refused:
        client.wait_model_ready("m", timeout_s=1.0)
    assert f"the Triton server at {silent_port} {HUNG}" in str(refused.value)


def test_loadtest_against_a_hung_server_names_it_hung(
    silent_port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    argv = ["loadtest", "--url", silent_port, "--data", str(data), "--out", str(tmp_path / "out"), "--model", "m"]
    assert cli.main([*argv, "--metrics-url", silent_port]) == 2
    err = capsys.readouterr().err
    assert HUNG in err and "no Triton server answers" not in err, err
