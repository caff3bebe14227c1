"""--host as tritonserver binds it (probe C, session 64): Triton's HTTP and metrics take a host *name* as an invalid
IP (bound to 255.255.255.255, a serve --host localhost never came up), so a name is resolved to one address first;
an IPv6 literal needs Triton's own spellings (gRPC `[::1]`, HTTP and metrics `ipv6:::1`). A bind the host makes
impossible names --host, not the port flag, and the no-TLS warning (naming metrics too) follows only a possible bind.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.server import ServerOptions, TritonServer
from serving.triton_install import TritonInstall

pytestmark = pytest.mark.e2e
INSTALL = TritonInstall(Path("/bin/tritonserver"), Path("/backends"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serving_models import make_build_dir

    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("hosts")
    deploy(make_build_dir(root / "build"), root / "repo", "dense", max_batch=8)
    return root / "repo"


def _ready(url: str) -> int:
    with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as answer:
        return int(answer.status)


def test_a_host_name_is_bound_as_its_address(repo: Path, triton_server_factory: Callable[..., TritonServer]) -> None:
    server = triton_server_factory(repo, host="localhost")
    flags = server.command(INSTALL)
    assert "--http-address=127.0.0.1" in flags and "--metrics-address=127.0.0.1" in flags
    assert "--grpc-address=127.0.0.1" in flags
    assert _ready(f"http://127.0.0.1:{server.ports['http']}") == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['metrics']}/metrics", timeout=5) as answer:
        assert b"nv_" in answer.read()


def test_an_ipv6_literal_binds_ipv6(repo: Path, triton_server_factory: Callable[..., TritonServer]) -> None:
    server = triton_server_factory(repo, host="::1")
    flags = server.command(INSTALL)
    assert "--grpc-address=[::1]" in flags and "--http-address=ipv6:::1" in flags
    assert "--metrics-address=ipv6:::1" in flags
    assert server.grpc_url == f"[::1]:{server.ports['grpc']}"
    assert _ready(f"http://[::1]:{server.ports['http']}") == 200
    with TritonGrpcClient(server.grpc_url, timeout_s=20) as client:
        assert client.infer("dense", {"x": np.zeros((1, 8), np.float32)})["probs"].shape == (1, 4)


def _serve(tmp_path: Path, host: str, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "repo").mkdir(exist_ok=True)
    args = ["serve", "--repo", str(tmp_path / "repo"), "--host", host]
    args += ["--grpc-port", "19811", "--http-port", "19810", "--metrics-port", "19812"]
    assert main(args) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("host", ["nosuchhost.invalid", "10.255.255.1"])
def test_a_host_at_fault_is_named_not_the_port(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    err = _serve(tmp_path, host, capsys)
    assert f"--host {host}" in err and "with --host" in err
    assert "--grpc-port" not in err and "warning" not in err


def test_the_no_tls_warning_names_metrics_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    options = ServerOptions(tmp_path, host="0.0.0.0")
    assert options.exposed_without_tls
    from quantserve.cli.commands.serve import exposure_warning

    assert "gRPC, HTTP and metrics listen on 0.0.0.0 without TLS" in exposure_warning(options)


def test_a_name_shows_the_address_it_binds(tmp_path: Path) -> None:
    from quantserve.cli.commands.serve import host_line

    options = ServerOptions(tmp_path, host="localhost")
    assert options.address("grpc") == "127.0.0.1" and options.host == "localhost"
    assert host_line(options) == "  host    localhost, bound as 127.0.0.1"
    assert host_line(ServerOptions(tmp_path)) is None
    with pytest.raises(QuantserveError, match=r"^--host nosuchhost\.invalid: .*with --host"):
        ServerOptions(tmp_path, host="nosuchhost.invalid")
