"""Shared fixtures: free ports on 127.0.0.1 and real tritonserver processes that are always stopped."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/serving and tests/optimizer mirror the package names; without the repository root on sys.path
# (an editable install resolves packages only after the path), `import serving` would find the test
# folder as a namespace package first and `serving.__file__` would be None.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# In `make test`'s two worker processes on 2 cores, a library's pool of one thread a core (torch, OpenMP) only
# contends with the other worker: one thread each, set before anything imports torch, and inherited by the
# processes the tests start.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from serving.ports import free_port  # noqa: E402
from serving.server import ServerOptions, TritonServer  # noqa: E402

# A shell starts a background job (`make test &`) with SIGINT ignored, and an ignored signal stays ignored across
# exec: every `quantserve` the tests start would then ignore the Ctrl-C they send it (Python installs its
# KeyboardInterrupt handler only where SIGINT is not ignored at start), and the interrupt tests waited 25 s on a run
# that never heard it. The suite's children get SIGINT as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def private_quantserve_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Calibration cache, library log and serve records under a temp folder: tests never write to ~/.cache.

    Tests that need their own folder still set these variables themselves (monkeypatch wins).
    """
    root = tmp_path_factory.mktemp("quantserve-home")
    names = {"QUANTSERVE_CACHE_DIR": "calib", "QUANTSERVE_LOG_DIR": "log", "QUANTSERVE_RUNTIME_DIR": "run"}
    with pytest.MonkeyPatch.context() as patch:
        for variable, folder in names.items():
            patch.setenv(variable, str(root / folder))
        yield


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
TEST_PORTS_FROM = 10000


def port_share() -> range:
    """This worker's share of the ports below the OS's ephemeral range: an outgoing connection is handed a port
    in that range, and a test port picked there free (bind to port 0) was taken before tritonserver bound it (CI,
    session 33: gRPC "Socket '127.0.0.1:48009' already in use"). Below it, only a listener of this machine or the
    other worker could take one; each worker has its own share, and what listens is skipped."""
    try:
        ephemeral_from = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_from = 32768
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    share = max(0, ephemeral_from - TEST_PORTS_FROM) // max(1, workers)
    return range(TEST_PORTS_FROM + worker * share, TEST_PORTS_FROM + (worker + 1) * share)


def listens(port: int) -> bool:
    """Something binds `port` on 127.0.0.1 already (bound as the servers bind: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture(scope="session")
def free_port_factory() -> Callable[[], int]:
    """Call it for a port free on 127.0.0.1 outside the ephemeral range (`port_share`); never the same port
    twice in one session. Where the share runs out (or is empty), a port the OS says is free."""
    given: set[int] = set()
    ports = iter(port_share())

    def next_port() -> int:
        port = next((p for p in ports if not listens(p)), None)
        while port is None or port in given:
            port = free_port()
        given.add(port)
        return port

    return next_port


@pytest.fixture(scope="module")
def triton_server_factory(
    free_port_factory: Callable[[], int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TritonServer]]:
    """Call it with a model repository (and `ServerOptions` fields) for a started server on free ports.

    Every server it starts is stopped by pid when the module's tests are done (or earlier by `.stop()`).
    """
    servers: list[TritonServer] = []

    def start(repo: Path, start: bool = True, **options: Any) -> TritonServer:
        if not {"grpc_port", "http_port", "metrics_port"} & options.keys():
            options.setdefault("ports_chosen", True)  # one taken before tritonserver binds it is picked again
        options.setdefault("grpc_port", free_port_factory())
        options.setdefault("http_port", free_port_factory())
        options.setdefault("metrics_port", free_port_factory())
        options.setdefault("log_path", tmp_path_factory.mktemp("triton-log") / "tritonserver.log")
        server = TritonServer(ServerOptions(repo, **options))
        servers.append(server)
        if start:
            server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port whose connections the kernel accepts (a listening socket) and nobody answers: a stopped process's, as a
    SIGSTOPped tritonserver's."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(autouse=True)
def no_gevent_monkey_patching() -> Iterator[None]:
    """Locust patches threading with gevent at import; in the pytest process that would serialize
    every later test's threads. Tests must run Locust in child processes."""
    yield
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        assert not monkey.is_module_patched("threading"), "this test imported locust in the pytest process"


def _just_above_the_candidates(
    art: Any,
    calib: Any,
    held: Any,
    tmp_path: Path,
    scheme: str | None = None,
    lax_bound: float = 0.99,
    **options: Any,
) -> float:
    """A cosine-mean bound the whole-model candidates (or the one of `scheme`) miss by 3 % of its room (margin about
    -0.03), read from a lax search's candidates on this CPU: with every other check lax, cosine mean binds, its slack
    (v − lax_bound) / (1 − lax_bound). A fixed bound held on one CPU's INT8 kernels and not on another's (AVX2 vs
    AVX-512 VNNI EPYC, session 41)."""
    from optimizer.drift_budget import DriftBudget
    from optimizer.int8_measure import SearchSettings
    from optimizer.int8_search import SearchInt8

    lax = DriftBudget(min_top1_agreement=0.0, min_cosine_mean=lax_bound, min_cosine_worst=0.0)
    lax = dataclasses.replace(lax, min_channel_correlation=0.0)
    search = SearchInt8(
        calib,
        held,
        budget=lax,
        **{"search": SearchSettings(max_probes=4, probe_samples=32, timing_repeats=1), **options},
    )
    with pytest.MonkeyPatch.context() as patch:  # its calibration cached apart: the search under test calibrates
        patch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "lax-cache"))
        record = search(art, tmp_path / "lax.onnx").manifest.stages[-1]
    room = 1.0 - lax_bound
    best = max(lax_bound + room * c["margin"] for c in record["candidates"] if scheme in (None, c["scheme"]))
    assert best < 1.0, record["candidates"]
    return 1.0 - 0.97 * (1.0 - best)


@pytest.fixture
def just_above_the_candidates() -> Callable[..., float]:
    """`_just_above_the_candidates`: a cosine bound an INT8 search's candidates miss on this CPU."""
    return _just_above_the_candidates
