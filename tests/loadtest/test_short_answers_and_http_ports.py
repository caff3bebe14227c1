"""Against a real tritonserver: a model that answers fewer rows than it was sent, and Triton's HTTP or metrics port
given as the gRPC `--url`.

A model answering `x[0:-1] @ W` passed silently: `infer --batch-size 1` saved 0 rows for 64 sent and exited 0, and a
load test counted every request a success (the broken model looked faster). The HTTP or metrics port as `--url`
waited ~12 s, then said "no Triton server answers" though Triton answered there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.load_run import LoadRun
from quantserve.cli import main
from serving.endpoints import ServedEndpoints, recorded
from serving.server import TritonServer

ANSWER_LINE = "            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(per_request[name])) for name in"
MAX_BATCH = 8


@dataclass
class Served:
    server: TritonServer
    repo: Path
    data: Path

    @property
    def url(self) -> str:
        return self.server.grpc_url

    def port(self, role: str) -> int:
        return self.server.ports[role]


def _answer_one_row_short(model_dir: Path) -> None:
    """Make the deployed Python backend answer every request one row short (`x[0:-1]`), as the probe's model did."""
    model_py = model_dir / "1" / "model.py"
    text = model_py.read_text()
    assert ANSWER_LINE in text
    model_py.write_text(
        text.replace("np.ascontiguousarray(per_request[name])", "np.ascontiguousarray(per_request[name][:-1])")
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]) -> Served:
    """`mlp` (right), `mlp_short` (one row short) with max_batch_size 8, and `mlp_short_whole` (one row short,
    max_batch_size 0: no batch axis, so its rows are the model's own business)."""
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("short")
    repo, data = models.own_mlp_repo(root, ("mlp", "mlp_short"), MAX_BATCH)
    deploy(root / "build", repo, "mlp_short_whole", max_batch=0, instances=1)
    _answer_one_row_short(repo / "mlp_short")
    _answer_one_row_short(repo / "mlp_short_whole")
    return Served(triton_server_factory(repo), repo, data)


def _infer(served: Served, model: str, *flags: str, url: str = "") -> int:
    return main(["infer", "--url", url or served.url, "--model", model, "--data", str(served.data), *flags])


@pytest.mark.e2e
def test_infer_refuses_an_answer_short_of_rows_and_saves_nothing(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.npz"
    assert _infer(served, "mlp_short", "--batch-size", "1", "--out", str(out)) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"quantserve: error: {served.url}: model 'mlp_short' answered 0 rows for 1 sent (output 'logits'); a model "
        f"with max_batch_size {MAX_BATCH} answers one row per row sent\n"
    )
    assert captured.out == "" and not out.exists()
    assert _infer(served, "mlp_short") == 2  # the default batch: the model's max
    assert "answered 7 rows for 8 sent (output 'logits')" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_model_without_a_batch_axis_is_not_held_to_rows(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert _infer(served, "mlp_short_whole") == 0
    assert capsys.readouterr().out.startswith("logits: float32 [63, 10]\n")


@pytest.mark.e2e
def test_a_batch_size_over_the_models_max_is_said_in_a_note(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert _infer(served, "mlp", "--batch-size", str(MAX_BATCH + 1)) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"quantserve: note: --batch-size {MAX_BATCH + 1} is more than model 'mlp' takes (max_batch_size {MAX_BATCH}): "
        f"sent as requests of at most {MAX_BATCH} samples\n"
    )
    assert "logits: float32 [64, 10]" in captured.out


@pytest.mark.e2e
def test_a_loadtest_counts_short_answers_as_failed_requests_and_names_them(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = f"127.0.0.1:{served.port('metrics')}"
    argv = ["loadtest", "--url", served.url, "--model", "mlp_short", "--data", str(served.data), "--out", str(tmp_path)]
    argv += ["--metrics-url", metrics, "--users", "1", "--duration", "2s", "--request-batch", "1"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    [step] = LoadRun.load(tmp_path / "load-mlp_short.json").results
    assert step.requests > 0 and step.failed_requests == step.requests, step
    assert list(step.errors) == [
        "TritonRequestFailed(\"model 'mlp_short' answered 0 rows for 1 sent (output 'logits')\")"
    ]
    assert "answered 0 rows for 1 sent (output 'logits')" in out


@pytest.mark.e2e
@pytest.mark.parametrize("role", ["http", "metrics"])
def test_the_http_or_metrics_port_as_url_is_named_at_once(
    served: Served, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"127.0.0.1:{served.port(role)}"
    started = time.monotonic()
    assert _infer(served, "mlp", url=url) == 2
    assert time.monotonic() - started < 5  # it waited 12 s for a gRPC answer
    kind = "HTTP" if role == "http" else "metrics"
    assert capsys.readouterr().err == (
        f"quantserve: error: {url} answers HTTP (Triton's {kind} port), not gRPC; pass Triton's gRPC port as --url "
        "host:port (8001 by default; `quantserve serve` prints it)\n"
    )
    ports = served.server.ports
    record = ServedEndpoints(os.getpid(), str(served.repo), "127.0.0.1", ports["grpc"], ports["http"], ports["metrics"])
    with recorded(record):
        assert _infer(served, "mlp", url=url) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {url} answers HTTP (Triton's {kind} port), not gRPC; its gRPC port is {served.url}: pass "
        f"--url {served.url}\n"
    )
