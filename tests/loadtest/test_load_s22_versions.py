"""Against a real tritonserver serving two live versions of one model: a load addressed to version 1
(`--model-version 1`) is judged by version 1's counters alone, and a soak of it records the version.

Triton sums every served version into the model's counters: another client loading version 2 during the window
made Triton's count disagree with the client's, and the server breakdown was dropped rather than shown for
version 1. A soak sent its requests to the version but saved neither it nor that version's precision.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_model_version_e2e import two_version_repo

from quantserve.cli import main
from quantserve.data import load_npz
from serving.server import TritonServer
from serving.triton_runner import TritonRunner

pytestmark = pytest.mark.e2e


@dataclass
class TwoVersions:
    server: TritonServer
    data: Path


@pytest.fixture(scope="module")
def two_versions(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> TwoVersions:
    """Version 1 FP32, version 2 recorded as int8 (the newest, the config's), as `deploy --live-versions 2` leaves."""
    root = tmp_path_factory.mktemp("versions")
    data, _ = two_version_repo(root)
    return TwoVersions(triton_server_factory(root / "repo"), data)


@pytest.fixture
def version_2_loaded(two_versions: TwoVersions) -> Iterator[list[int]]:
    """Another client sending version 2 request after request until the test ends; yields its count of answers."""
    x, answered, stop = load_npz(two_versions.data).arrays["x"][:4], [0], threading.Event()

    def load() -> None:
        with TritonRunner(two_versions.server.grpc_url, "mlp", "2") as runner:
            while not stop.is_set():
                runner.infer({"x": x})
                answered[0] += 1

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    yield answered
    stop.set()
    thread.join(timeout=10)


def test_the_addressed_versions_counters_alone_judge_the_window(
    two_versions: TwoVersions, version_2_loaded: list[int], tmp_path: Path
) -> None:
    server = two_versions.server
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--model-version", "1", "--users", "2"]
    argv += ["--duration", "3s", "--data", str(two_versions.data), "--metrics-url", server.metrics_url]
    assert main([*argv, "--out", str(tmp_path), "--json"]) == 0
    result = json.loads((tmp_path / "load-mlp_1.json").read_text())["results"][0]
    assert version_2_loaded[0] > 200  # enough of the other client's load to tip the sum of both versions
    assert result["server"] is not None, result.get("server_counters_left_out")
    assert result["server"]["version"] == "1"
    client = result["requests"] - result["failed_requests"]
    # each of the 2 users may have one request Triton answered before its first scrape and the client received after
    # the window opened (the users run warm by then); after the end, answers Triton counted and the client did not
    assert client - 2 <= result["server"]["requests_succeeded"] <= client + 2 + 0.1 * client + 10


def test_a_soak_of_one_version_records_it(two_versions: TwoVersions, tmp_path: Path) -> None:
    server = two_versions.server
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--model-version", "1", "--users", "2"]
    argv += ["--soak", "5s", "--data", str(two_versions.data), "--server-pid", str(server.pid)]
    assert main([*argv, "--metrics-url", server.metrics_url, "--out", str(tmp_path)]) in (0, 1)  # 1: not flat
    soak = json.loads((tmp_path / "soak-mlp_1.json").read_text())
    assert (soak["model"], soak["model_version"]) == ("mlp@1", "1")
    assert soak["precision"] == "fp32"  # version 1's own, not the newest's (int8)
