"""deploy refuses a model Triton could not load before writing anything; serve refuses a model folder with no
version and clears a killed first deploy's leftovers; a taken port names the `quantserve serve` holding it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from quantserve.cli import main
from serving.deploy import deploy
from serving.repository import STAGING_PREFIX, prepare_repository
from serving.repository_lock import LOCK_NAME, VERSION_RECORD
from serving.withdraw import withdraw


def break_no_such_op(model: onnx.ModelProto) -> None:
    model.graph.node[0].op_type = "NoSuchOp"


def break_weight_type(model: onnx.ModelProto) -> None:
    """The ONNX checker passes it (no type inference); ONNX Runtime finds MatMul(float, int64) and refuses."""
    weights = model.graph.initializer[0]
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights).astype("int64"), weights.name))


def damage(build: Path, how: str) -> None:
    path = build / "model.onnx"
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        model = onnx.load(str(path))
        (break_no_such_op if how == "no_such_op" else break_weight_type)(model)
        onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("truncated", "not a readable ONNX model (DecodeError)"),
        ("empty", "the file is empty (0 bytes), not an ONNX model"),
        ("no_such_op", "ONNX checker rejected the model (No Op registered for NoSuchOp with domain_version of 17)"),
        ("weight_type", "ONNX Runtime cannot load the model ("),
    ],
)
def test_a_model_that_cannot_load_is_refused_and_nothing_is_written(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, reason: str
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    capsys.readouterr()
    damage(dense_build, how)
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"quantserve: error: {dense_build / 'model.onnx'}: {reason}"), captured.err
    assert captured.err.count("\n") == 1 and "deployed" not in captured.out
    assert {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "new"), "--name", "dense"]) == 2
    assert not (tmp_path / "new").exists()


def test_withdraw_leaves_the_repository_as_before_the_deploy(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=4)
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    result = deploy(dense_build, repo, "dense", max_batch=8, prune=False)
    withdraw(result)
    record = Path("dense") / VERSION_RECORD  # the one change: version 2 was issued, and is never issued again
    after = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert (before.pop(record), after.pop(record)) == (b"1\n", b"2\n") and after == before
    withdraw(deploy(dense_build, repo, "fresh", prune=False))
    assert sorted(p.name for p in repo.iterdir()) == ["dense"]


def dead_pid() -> int:
    """A process id whose process has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_killed_first_deploy_leftovers_are_removed_before_serving(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    staging = repo / "newcnn" / f"{STAGING_PREFIX}{dead_pid()}-1"
    staging.mkdir(parents=True)
    (staging / "model.onnx").write_bytes(b"half a copy")
    (repo / "dense" / f"{STAGING_PREFIX}{dead_pid()}-2").mkdir()
    prepare_repository(repo)
    assert sorted(p.name for p in repo.iterdir()) == ["dense"]
    assert sorted(p.name for p in (repo / "dense").iterdir()) == [VERSION_RECORD, LOCK_NAME, "1", "config.pbtxt"]


def serve_args(repo: Path, free_port_factory: Callable[[], int], grpc_port: int | None = None) -> list[str]:
    ports = [grpc_port or free_port_factory(), free_port_factory(), free_port_factory()]
    flags = ["--grpc-port", "--http-port", "--metrics-port"]
    return [
        "serve",
        "--repo",
        str(repo),
        "--startup-timeout",
        "20",
        *(f for pair in zip(flags, map(str, ports), strict=True) for f in pair),
    ]


def test_serve_refuses_a_model_folder_with_no_version_before_starting_triton(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "newcnn" / f"{STAGING_PREFIX}{os.getpid()}-1").mkdir(parents=True)  # a deploy still running
    assert main(serve_args(repo, free_port_factory)) == 2
    err = capsys.readouterr().err
    reason = "model 'newcnn' has no version folder; deploy it or remove the folder"
    assert err == f"quantserve: error: {repo / 'newcnn'}: {reason}\n"


def test_a_port_taken_by_another_serve_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    from serving.endpoints import ServedEndpoints, write_record

    repo = tmp_path / "repo"
    repo.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = subprocess.Popen(["sleep", "30"])  # stands in for the serve process that holds the port
        try:
            record = write_record(ServedEndpoints(other.pid, "/srv/other_repo", "127.0.0.1", port, 1, 2))
            assert main(serve_args(repo, free_port_factory, grpc_port=port)) == 2
        finally:
            other.kill()
            other.wait()
    err = capsys.readouterr().err
    assert err == (
        f"quantserve: error: grpc port {port} on 127.0.0.1 is already in use; choose another with --grpc-port; "
        f"held by quantserve serve (pid {other.pid}, repository /srv/other_repo; record {record})\n"
    )
    assert json.loads(record.read_text())["pid"] == other.pid
    record.unlink()


def test_a_repository_another_serve_serves_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    """Two servers on one repository both loaded every change, and a deploy --url to one left the other behind."""
    from serving.endpoints import ServedEndpoints, write_record

    repo = tmp_path / "repo"
    repo.mkdir()
    other = subprocess.Popen(["sleep", "30"])  # stands in for the serve process that serves the repository
    try:
        record = write_record(ServedEndpoints(other.pid, str(repo), "127.0.0.1", free_port_factory(), 1, 2))
        assert main(serve_args(tmp_path / "." / "repo", free_port_factory)) == 2
    finally:
        other.kill()
        other.wait()
    assert capsys.readouterr().err == (
        f"quantserve: error: {tmp_path / 'repo'}: already served by quantserve serve (pid {other.pid}, repository "
        f"{repo}; record {record}); stop it first, or serve a copy of the repository\n"
    )
    record.unlink()


def test_deploy_url_at_a_port_that_does_not_speak_http_is_one_line_and_withdrawn(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gRPC port given for --url: a traceback (BadStatusLine) while the version stayed in the repository, where
    a watching server loaded it."""
    import contextlib
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_like_grpc() -> None:  # an HTTP/2 SETTINGS frame, as a gRPC port answers an HTTP/1.1 request
        for _ in range(8):
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            with peer, contextlib.suppress(OSError):  # a client gone early: nothing more to answer
                peer.settimeout(10)
                request = b""
                while b"\r\n\r\n" not in request:  # the whole request read first: unread bytes make close a reset
                    request += peer.recv(4096)
                head, _, body = request.partition(b"\r\n\r\n")
                length = next(
                    (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0
                )
                while len(body) < length:
                    body += peer.recv(4096)
                peer.sendall(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64")
                peer.shutdown(socket.SHUT_WR)
                while peer.recv(4096):  # until the client closes its side
                    pass

    threading.Thread(target=answer_like_grpc, daemon=True).start()
    repo = tmp_path / "repo"
    url = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--url", url]) == 2
    finally:
        listener.close()
    err = capsys.readouterr().err
    assert f"{url}: not a Triton HTTP endpoint (" in err and "--url takes the HTTP port" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (repo / "dense").exists() or not [p for p in (repo / "dense").iterdir() if p.name.isdigit()]
