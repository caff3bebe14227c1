"""TLS and exposure: gRPC over TLS and mutual TLS with certificates made on the fly (trustme).

A client that trusts the CA gets answers (the CLI, the gRPC client, Locust users); a plain-text
client or, under mutual TLS, one without a certificate is refused. HTTP and metrics stay on
loopback under TLS; binding beyond loopback without TLS prints a warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import trustme

from loadtest.harness import run_load
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.call_failures import RetryPolicy
from serving.client import TritonGrpcClient
from serving.server import ServerOptions, TritonServer
from serving.tls import ClientTls, ServerTls

pytestmark = pytest.mark.e2e
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1", "localhost"), ca.issue_cert("quantserve-client.test")
    files = {name: folder / f"{name}.pem" for name in ("ca", "server_cert", "server_key", "client_cert", "client_key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return files


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serving_models import make_build_dir

    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("tls")
    deploy(make_build_dir(root / "build"), root / "repo", "dense", max_batch=8)
    return root / "repo"


def _server(repo: Path, factory: Callable[..., TritonServer], tls: ServerTls) -> TritonServer:
    return factory(repo, tls=tls)


def test_tls_server_answers_trusting_clients_only(
    repo: Path, pki: dict[str, Path], triton_server_factory: Callable[..., TritonServer], tmp_path: Path
) -> None:
    server = _server(repo, triton_server_factory, ServerTls(pki["server_cert"], pki["server_key"]))
    assert server.options.address("http") == "127.0.0.1" and server.options.address("metrics") == "127.0.0.1"
    x = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    with TritonGrpcClient(server.grpc_url, timeout_s=20, tls=ClientTls(pki["ca"])) as client:
        assert client.infer("dense", {"x": x})["probs"].shape == (4, 4)
    plain = TritonGrpcClient(server.grpc_url, timeout_s=5, retry=NO_RETRY)
    with plain, pytest.raises(QuantserveError, match="inference on 'dense' failed"):
        plain.infer("dense", {"x": x})
    np.savez(tmp_path / "x.npz", x=x)
    infer = ["infer", "--url", server.grpc_url, "--model", "dense", "--data", str(tmp_path / "x.npz")]
    assert main([*infer, "--tls-ca", str(pki["ca"])]) == 0
    evaluate = ["evaluate", "--url", server.grpc_url, "--models", "dense", "--reference", "dense"]
    evaluate += ["--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "eval"), "--task", "embedding"]
    assert main([*evaluate, "--tls-ca", str(pki["ca"])]) == 0
    assert "QUANTSERVE_TLS_CA" not in os.environ  # restored: later plain clients stay plain
    load = run_load(server.grpc_url, "dense", tmp_path / "x.npz", 2, 3.0, tmp_path / "load", tls=ClientTls(pki["ca"]))
    assert load.requests > 0 and load.failed_requests == 0


def test_mutual_tls_refuses_a_client_without_a_certificate(
    repo: Path, pki: dict[str, Path], triton_server_factory: Callable[..., TritonServer]
) -> None:
    tls = ServerTls(pki["server_cert"], pki["server_key"], client_ca=pki["ca"])
    server = _server(repo, triton_server_factory, tls)
    x = np.zeros((1, 8), np.float32)
    anonymous = TritonGrpcClient(server.grpc_url, timeout_s=5, tls=ClientTls(pki["ca"]), retry=NO_RETRY)
    with anonymous, pytest.raises(QuantserveError, match="inference on 'dense' failed"):
        anonymous.infer("dense", {"x": x})
    mutual = ClientTls(pki["ca"], pki["client_cert"], pki["client_key"])
    with TritonGrpcClient(server.grpc_url, timeout_s=20, tls=mutual) as client:
        assert client.infer("dense", {"x": x})["probs"].shape == (1, 4)


def test_tls_flags_reach_tritonserver(pki: dict[str, Path], tmp_path: Path) -> None:
    from serving.triton_install import TritonInstall

    tls = ServerTls(pki["server_cert"], pki["server_key"], client_ca=pki["ca"])
    command = TritonServer(ServerOptions(tmp_path, host="0.0.0.0", tls=tls)).command(
        TritonInstall(Path("/bin/tritonserver"), Path("/backends"))
    )
    assert "--grpc-use-ssl=true" in command and "--grpc-use-ssl-mutual=true" in command
    assert f"--grpc-root-cert={pki['ca']}" in command and f"--grpc-server-key={pki['server_key']}" in command
    assert "--grpc-address=0.0.0.0" in command and "--http-address=127.0.0.1" in command


def test_exposed_without_tls_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--repo", str(tmp_path / "missing"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "warning: gRPC, HTTP and metrics listen on 0.0.0.0 without TLS" in err
    assert "model repository not found" in err
    assert main(["serve", "--repo", str(tmp_path / "missing")]) == 2
    assert "warning" not in capsys.readouterr().err


def test_half_tls_settings_are_one_clear_error(pki: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--tls-cert", str(pki["server_cert"])]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    with pytest.raises(QuantserveError, match=r"--tls-ca .*missing\.pem: file not found"):
        ClientTls(pki["ca"].parent / "missing.pem")


def test_host_helpers_agree_on_what_is_local_and_what_is_exposed() -> None:
    from serving.tls import connect_host, is_loopback, reaches_this_machine

    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", "10.0.0.5")] == [
        True, True, True, True, False, False
    ]  # fmt: skip
    assert connect_host("0.0.0.0") == "127.0.0.1" and connect_host("::") == "127.0.0.1"
    assert connect_host("10.0.0.5") == "10.0.0.5"
    assert reaches_this_machine("0.0.0.0") and reaches_this_machine("localhost")
    assert not reaches_this_machine("10.0.0.5")
