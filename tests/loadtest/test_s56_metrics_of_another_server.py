"""A --metrics-url of another Triton server than --url's. Probe T (session 56): `loadtest --url 127.0.0.1:19801
--metrics-url 127.0.0.1:19812`, 19812 being the metrics of the server at 19811 (`run/serve-19811.json`), counted 0 of
the client's 1148 answers, and the note blamed "a version unloaded or reloaded during it (a deploy, a rollback) …
another client's load" though nothing was deployed. The serve records now refuse it before any load; without them,
the note names the metrics address."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_server_counters import client_result

from loadtest import metrics_owner, server_pids
from loadtest.metrics_owner import check_metrics_owner, counted_nothing
from loadtest.partial_counters import counters_not_whole
from loadtest.recording_files import Window
from loadtest.results import NO_TRITON_COUNTERS, LoadResult
from loadtest.triton_metrics import breakdown, parse_metrics
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving import endpoints
from serving.endpoints import ServedEndpoints

OWN, OTHER = os.getpid(), os.getppid()  # two live processes: serve of --url, serve of the other server


@pytest.fixture(autouse=True)
def listeners(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """Which pid listens on which port (none unless a test says): real ports of this machine decide nothing here."""
    ports: dict[int, int] = {}
    monkeypatch.setattr(server_pids, "listening_pid", lambda url: ports.get(int(url.rpartition(":")[2])))
    return ports


@pytest.fixture
def two_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's two `quantserve serve` records: repo on 19801/19800/19802, repo2 on 19811/19810/19812."""
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    endpoints.write_record(ServedEndpoints(OWN, "/repo", "127.0.0.1", 19801, 19800, 19802))
    endpoints.write_record(ServedEndpoints(OTHER, "/repo2", "127.0.0.1", 19811, 19810, 19812))


def test_the_metrics_of_another_recorded_server_are_refused(
    two_servers: None, listeners: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_owner, "process_name", lambda pid: "tritonserver")
    listeners.update({19801: 101, 19802: 101, 19811: 202, 19812: 202})  # the records' words come first
    with pytest.raises(QuantserveError) as refused:
        check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19812")
    assert str(refused.value) == (
        f"--metrics-url 127.0.0.1:19812 is the metrics address of the Triton server at 127.0.0.1:19811 (quantserve "
        f"serve pid {OTHER}), not of the one at --url 127.0.0.1:19801 (its metrics: 127.0.0.1:19802): pass "
        "--metrics-url 127.0.0.1:19802 or leave it out"
    )
    with pytest.raises(QuantserveError, match=re.escape("gRPC port of the Triton server at --url 127.0.0.1:19801")):
        check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19801")
    with pytest.raises(QuantserveError, match=re.escape("HTTP port of the Triton server at 127.0.0.1:19811")):
        check_metrics_owner("127.0.0.1:19801", "http://127.0.0.1:19810/metrics")


def test_the_own_metrics_pass_and_a_doubt_is_a_warning(two_servers: None) -> None:
    assert check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19802") is None
    assert check_metrics_owner("localhost:19801", "http://127.0.0.1:19802/metrics") is None
    assert check_metrics_owner("127.0.0.1:19811", "localhost:19812") is None
    assert check_metrics_owner("10.9.9.9:8001", "10.9.9.9:8002") is None  # nothing recorded: nothing to check
    unrecorded = check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19899") or ""
    assert unrecorded.startswith(
        f"--metrics-url 127.0.0.1:19899 is not the metrics address quantserve serve (pid {OWN}) recorded for the "
        "Triton server at --url 127.0.0.1:19801 (127.0.0.1:19802)"
    )
    proxy = check_metrics_owner("127.0.0.1:19891", "127.0.0.1:19812") or ""  # --url not recorded: maybe a proxy
    assert proxy.startswith("--metrics-url 127.0.0.1:19812 is the metrics address of the Triton server at 127.0.0.1")


def test_the_cli_refuses_before_any_load_or_file(
    two_servers: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "t4"
    flags = ["--model", "digits_int8", "--data", str(tmp_path / "load16.npz"), "--duration", "10s", "--out", str(out)]
    status = main(["loadtest", "--url", "127.0.0.1:19801", "--metrics-url", "127.0.0.1:19812", *flags])
    assert status == 2
    assert "is the metrics address of the Triton server at 127.0.0.1:19811" in capsys.readouterr().err
    assert not out.exists()


def test_two_tritonserver_processes_are_refused_without_records(
    listeners: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No serve records (tritonserver started by hand): the processes listening on the two ports tell."""
    names = {101: "tritonserver", 202: "tritonserver", 303: "docker-proxy"}
    monkeypatch.setattr(metrics_owner, "process_name", lambda pid: names[pid])
    listeners.update({19801: 101, 19802: 101, 19812: 202, 19899: 303})
    with pytest.raises(QuantserveError) as refused:
        check_metrics_owner("127.0.0.1:19801", "localhost:19812")
    assert str(refused.value) == (
        "--metrics-url localhost:19812 is the port of tritonserver pid 202, --url 127.0.0.1:19801 that of "
        "tritonserver pid 101: the metrics of another Triton server; pass the metrics port of pid 101 (8002 by "
        "default)"
    )
    assert check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19802") is None  # one process: its own metrics
    assert check_metrics_owner("127.0.0.1:19801", "127.0.0.1:19899") is None  # a proxy proves nothing
    assert check_metrics_owner("127.0.0.1:19801", "10.1.2.3:19812") is None  # another machine's port


def _other_servers_text(success: int = 0, model: str = "digits_int8") -> dict[str, dict]:
    """The other server's counters: its copy of the model (and another) listed, counting nothing of this load."""
    lines = [f'nv_inference_request_success{{model="{model}",version="3"}} {success}']
    lines += ['nv_inference_request_success{model="digits_fp32",version="1"} 0']
    return parse_metrics("\n".join(lines))


def test_a_model_whose_counters_did_not_move_names_the_metrics_address() -> None:
    """The other server had answered 500 requests of its copy before: the same counts at both ends, no reload (that
    sets them back to zero), the client 1148 answers."""
    window = Window(0.0, 10.0, _other_servers_text(500), _other_servers_text(500), scrape_s=0.01)
    said = _measured(_probes_result(), window)
    assert said.startswith(f"{NO_TRITON_COUNTERS} of this load: they count no request of model 'digits_int8'")
    assert "while the client got 1148 answers" in said and "another Triton server's" in said
    assert "deploy" not in said and "another client's load" not in said


def test_a_model_at_zero_at_both_ends_names_both_causes() -> None:
    """The probe's figures: the other server's copy listed at zero at both ends. A version reloaded during the window
    can leave that too (`test_server_counters`' incompatible swap), so both causes are said."""
    window = Window(0.0, 10.0, _other_servers_text(), _other_servers_text(), scrape_s=0.01)
    said = _measured(_probes_result(), window)
    assert said.startswith("Triton counted 0 successful requests of model 'digits_int8' over the window")
    assert said.endswith(
        "; or the metrics address is another Triton server's, where model 'digits_int8' counted nothing (its "
        "counters stayed at zero): pass --metrics-url the metrics port of the server at --url"
    )


def test_a_model_not_listed_there_names_the_metrics_address() -> None:
    window = Window(0.0, 10.0, _other_servers_text(model="x"), _other_servers_text(model="x"), scrape_s=0.01)
    said = _measured(_probes_result(), window)
    assert "they list no model 'digits_int8' (only 'digits_fp32', 'x')" in said and "deploy" not in said


def test_counters_that_moved_keep_the_deploy_or_other_client_note() -> None:
    before, after = _other_servers_text(500), _other_servers_text(500 + 2000)
    assert not counted_nothing(before, after, "digits_int8") and counted_nothing(before, before, "digits_int8")
    said = _measured(_probes_result(), Window(0.0, 10.0, before, after, scrape_s=0.01))
    assert said.startswith("Triton counted 2000 successful requests of model 'digits_int8'")
    assert "another Triton server's" not in said


def _probes_result() -> LoadResult:
    """The client's count in the probe: 1148 answers, none failed, 4 users."""
    result = client_result(1148, users=4)
    result.model = "digits_int8"
    return result


def _measured(result: LoadResult, window: Window) -> str:
    """The note `step_result` leaves for the result's own model (`test_server_counters.measured`'s, for 'm')."""
    assert window.metrics_before is not None and window.metrics_after is not None
    result.server = breakdown(window.metrics_before, window.metrics_after, result.model)
    return counters_not_whole(window, result) or ""
