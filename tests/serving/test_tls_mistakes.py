"""TLS mistakes are named in one line, before anything starts, on both sides.

`serve` checks its certificate, key and client CA (readable, matching, within their dates) before it starts
tritonserver (a key of another certificate was "exited with code 1" above 50 lines ending in a false "Socket
already in use"; an expired certificate started without a word). Clients check their own files the same way,
and when a server does not answer over TLS they name the TLS cause (it was "no Triton server answers" after
10 s, under raw gRPC log lines).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import trustme

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.server import TritonServer
from serving.tls import ClientTls, ServerTls

PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def _write_leaf(folder: Path, name: str, leaf: trustme.LeafCert) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two CAs; certificates for 127.0.0.1 (one expired), a client's, and files that are not what they claim."""
    folder = tmp_path_factory.mktemp("pki")
    ca, other_ca = trustme.CA(), trustme.CA()
    files: dict[str, Path] = {"ca": folder / "ca.pem", "other_ca": folder / "other_ca.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    other_ca.cert_pem.write_to_path(str(files["other_ca"]))
    files["cert"], files["key"] = _write_leaf(folder, "server", ca.issue_cert("127.0.0.1", "localhost"))
    _, files["other_key"] = _write_leaf(folder, "other", ca.issue_cert("127.0.0.1"))
    expired = ca.issue_cert("127.0.0.1", not_before=PAST, not_after=PAST + dt.timedelta(days=30))
    files["expired_cert"], files["expired_key"] = _write_leaf(folder, "expired", expired)
    files["client_cert"], files["client_key"] = _write_leaf(folder, "client", ca.issue_cert("client.test"))
    stranger = other_ca.issue_cert("stranger.test")
    files["stranger_cert"], files["stranger_key"] = _write_leaf(folder, "stranger", stranger)
    files["garbage"] = folder / "garbage.pem"
    files["garbage"].write_text("garbage\n")
    return files


@pytest.mark.parametrize(
    ("cert", "key", "client_ca", "message"),
    [
        ("cert", "other_key", None, r"--tls-key .*other\.key does not match --tls-cert .*server\.pem"),
        ("garbage", "key", None, r"--tls-cert .*garbage\.pem: no PEM certificate in it$"),
        ("key", "cert", None, r"--tls-cert .*server\.key: no PEM certificate in it \(it holds a private key: are "),
        ("cert", "key", "garbage", r"--tls-client-ca .*garbage\.pem: no PEM certificate in it$"),
        ("expired_cert", "expired_key", None, r"--tls-cert .*expired\.pem: certificate .* expired on 2020-01-31"),
    ],
)
def test_server_tls_files_are_checked_in_one_line(
    pki: dict[str, Path], cert: str, key: str, client_ca: str | None, message: str
) -> None:
    with pytest.raises(QuantserveError, match=message) as raised:
        ServerTls(pki[cert], pki[key], pki[client_ca] if client_ca else None)
    assert "\n" not in str(raised.value)


def test_serve_refuses_a_key_of_another_certificate_before_starting_tritonserver(
    pki: dict[str, Path], tmp_path: Path, free_port_factory: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "repo").mkdir()
    ports = [str(free_port_factory()) for _ in range(3)]
    command = ["serve", "--repo", str(tmp_path / "repo"), "--grpc-port", ports[0], "--http-port", ports[1]]
    command += ["--metrics-port", ports[2], "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["other_key"])]
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match --tls-cert" in err[0], err


@pytest.mark.parametrize(
    ("ca", "cert", "key", "message"),
    [
        ("garbage", None, None, r"--tls-ca .*garbage\.pem: no PEM certificate in it$"),
        ("ca", "client_cert", "other_key", r"--tls-key .*other\.key does not match --tls-cert .*client\.pem"),
        ("ca", "expired_cert", "expired_key", r"--tls-cert .*expired\.pem: certificate .* expired on 2020-01-31"),
    ],
)
def test_client_tls_files_are_checked_in_one_line(
    pki: dict[str, Path], ca: str, cert: str | None, key: str | None, message: str
) -> None:
    with pytest.raises(QuantserveError, match=message):
        ClientTls(pki[ca], pki[cert] if cert else None, pki[key] if key else None)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serving_models import make_build_dir

    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("tls-mistakes")
    deploy(make_build_dir(root / "build"), root / "repo", "dense", max_batch=8)
    return root / "repo"


@pytest.fixture(scope="module")
def servers(
    repo: Path, pki: dict[str, Path], triton_server_factory: Callable[..., TritonServer]
) -> dict[str, TritonServer]:
    """TLS, mutual TLS, and TLS with an expired certificate (which serve now refuses; set after the check)."""
    expired = ServerTls(pki["cert"], pki["key"])
    object.__setattr__(expired, "cert", pki["expired_cert"])
    object.__setattr__(expired, "key", pki["expired_key"])
    return {
        "tls": triton_server_factory(repo, tls=ServerTls(pki["cert"], pki["key"])),
        "mtls": triton_server_factory(repo, tls=ServerTls(pki["cert"], pki["key"], client_ca=pki["ca"])),
        "expired": triton_server_factory(repo, tls=expired),
    }


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("server", "ca", "cert", "key", "message"),
    [
        ("expired", "ca", None, None, "the server's certificate has expired"),
        ("tls", "other_ca", None, None, r"the server's certificate is not signed by --tls-ca .*other_ca\.pem"),
        ("tls", None, None, None, "serves gRPC over TLS: pass --tls-ca"),
        ("mtls", "ca", None, None, r"requires a client certificate: pass --tls-cert and --tls-key"),
        ("mtls", "ca", "stranger_cert", "stranger_key", r"refused the client certificate .*stranger\.pem"),
    ],
)
def test_a_client_names_the_tls_cause_when_the_server_does_not_answer(
    servers: dict[str, TritonServer],
    pki: dict[str, Path],
    server: str,
    ca: str | None,
    cert: str | None,
    key: str | None,
    message: str,
) -> None:
    url = servers[server].grpc_url
    tls = ClientTls(pki[ca] if ca else None, pki[cert] if cert else None, pki[key] if key else None) if ca else None
    with TritonGrpcClient(url, timeout_s=30, tls=tls) as client, pytest.raises(QuantserveError) as raised:
        client.wait_model_ready("dense", timeout_s=30)
    assert f"{url}:" in str(raised.value) and "no Triton server answers" not in str(raised.value)
    raised.match(message)


@pytest.mark.e2e
def test_infer_says_the_tls_cause_in_one_line_without_grpc_log_lines(
    servers: dict[str, TritonServer], pki: dict[str, Path], tmp_path: Path
) -> None:
    np.savez(tmp_path / "x.npz", x=np.zeros((1, 8), np.float32))
    url = servers["tls"].grpc_url
    command = [sys.executable, "-m", "quantserve", "infer", "--url", url, "--model", "dense"]
    command += ["--data", str(tmp_path / "x.npz"), "--tls-ca", str(pki["other_ca"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not signed by --tls-ca" in lines[0], lines
