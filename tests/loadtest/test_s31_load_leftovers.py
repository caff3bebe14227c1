"""Load and evaluate leftovers of issue 11 (session 31), no Locust run and no server here (records and stand-ins):
- `--stages … --duration 30s` ran the stages' 4 s, the --duration ignored in silence: refused (the stages are the
  run's length), and left unused with a note where the environment or a config file set it;
- a `--soak` into an --out holding a plain run, stopped early, saved its load-NAME.json over that run's: refused;
- `evaluate --load-duration` replaced a load run's load-NAME.json in --out in silence: refused, as loadtest does;
- the send-lag advice weighed --workers against os.cpu_count(), not the cores the client may use;
- the send-lag and never-sent notes told a run whose server's own queue refused 95 % of its requests ("Exceeds
  maximum queue size") to raise --max-in-flight;
- evaluate told the user of a hung (SIGSTOPped) server to "start it again", as if it had gone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

import loadtest.evaluator_failures as evaluator_failures
from loadtest.evaluator_failures import RowsSent, request_failure
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.utilization import UtilizationSampler
from quantserve import cli
from serving.triton_runner import ServerStopped

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the refusals stops at the server check
NO_SERVER = f"no Triton server answers at {DEAD_URL}"
QUEUE_FULL = "TritonRequestFailed('[StatusCode.UNAVAILABLE] [request id: <id_unknown>] Exceeds maximum queue size')"


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    return data


def _loadtest(tmp_path: Path, out: Path, *flags: str) -> list[str]:
    """A loadtest of model m into `out`, against a dead port."""
    target = ["--url", DEAD_URL, "--metrics-url", DEAD_URL, "--model", "m"]
    return ["loadtest", *target, "--data", str(_data(tmp_path)), "--out", str(out), *flags]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.removeprefix("quantserve: error: ").rstrip("\n")


def test_stages_refuse_a_typed_duration_and_leave_the_environments_unused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert cli.main(_loadtest(tmp_path, out, "--stages", "2:2s,4:2s", "--duration", "30s")) == 2
    assert _error(capsys) == "--stages sets its own users and run time; drop --duration"
    assert not out.exists()
    monkeypatch.setenv("QUANTSERVE_DURATION", "30s")
    assert cli.main(_loadtest(tmp_path, out, "--stages", "2:2s,4:2s")) == 2  # on to the server check
    printed = capsys.readouterr()
    assert printed.err == f"quantserve: error: {NO_SERVER}\n"
    note = "note: QUANTSERVE_DURATION=30s is not used: --stages sets its own users and run time"
    assert printed.out.splitlines()[0] == note


def test_a_soak_into_a_folder_holding_a_plain_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "load-m.json").write_text("{}")  # what is in it does not matter: it would be replaced
    assert cli.main(_loadtest(tmp_path, out, "--soak", "10s")) == 2
    assert _error(capsys) == (
        f"{out / 'load-m.json'}: a load run of 'm' is saved here, which this soak would replace if stopped early (it "
        "saves what it measured under that name); give the soak another --out, or remove that file"
    )
    assert (out / "load-m.json").read_text() == "{}"
    (out / "load-m-open.json").write_text("{}")  # an open-loop run's file is not the soak's: on to the server check
    (out / "load-m.json").unlink()
    assert cli.main(_loadtest(tmp_path, out, "--soak", "10s")) == 2
    assert _error(capsys) == NO_SERVER


def test_evaluate_with_a_load_refuses_to_replace_a_load_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "load-b.json").write_text("{}")
    argv = ["evaluate", "--url", DEAD_URL, "--models", "a,b", "--reference", "a", "--data", str(_data(tmp_path))]
    argv += ["--out", str(out)]
    assert cli.main([*argv, "--load-duration", "2s"]) == 2
    assert _error(capsys) == (
        f"{out / 'load-b.json'}: an earlier run of 'b' is saved here; give this run another --out, or remove that "
        "file to measure it again in its place"
    )
    assert sorted(p.name for p in out.iterdir()) == ["load-b.json"]  # refused before the accuracy pass


def _open_step(workers: int = 0, errors: dict[str, int] | None = None) -> LoadResult:
    """An open-loop step at 400 req/s whose requests waited in the client behind 8 full in-flight slots."""
    latency = LatencySummary.from_samples(np.full(113, 5.0))
    result = LoadResult("m", DEAD_URL, "open", 1, 6.0, 2244, 2131, 18.8, 18.8, latency, workers=workers)
    result.rate_rps, result.arrivals, result.errors = 400.0, "constant", errors or {}
    result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = 337.8, 419.0, 5.0
    result.peak_in_flight, result.max_in_flight = 9, 8
    result.offered_requests, result.unsent = 2399, 147
    return result


def test_the_send_lag_advice_weighs_workers_against_the_cores_the_client_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    sampler = UtilizationSampler(None)
    sampler._rows = [{"t": 1.0, "machine_cpu_pct": 150.0, "generator_cpu_pct": 90.0}]
    behind = _open_step(workers=2)
    behind.generator_lag_p99_ms, behind.peak_in_flight = 400.0, 3  # the generator's CPU, slots free
    behind.utilization = sampler.result(0.0, 2.0)
    assert behind.utilization.usable_cores == 2 and behind.utilization.cpu_count == 64
    note = behind.send_lag_note() or ""
    assert note.endswith("; run the client on another machine (its 2 --workers already match the 2 cores it may use)")


def test_a_full_server_queue_is_not_told_to_raise_max_in_flight() -> None:
    """The probe's run: --rate 400 --max-in-flight 8 at a model deployed with max_queue_size 2."""
    refused = _open_step(errors={QUEUE_FULL: 2137})
    notes = [note for note in refused.notes() if "slots were taken" in note]
    assert len(notes) == 2, refused.notes()
    assert not [note for note in notes if "raise --max-in-flight" in note], notes
    full = "all 8 in-flight slots were taken while the server's own queue was full (2137 requests refused by it in "
    full += "the run)"
    unsent, late = sorted(notes, key=lambda note: "never sent" not in note)
    assert f"147 never sent: {full}: the server's capacity was below the offered rate (they waited" in unsent
    assert late.endswith(
        f"{full}, so requests waited for a free in-flight slot: the server answered slower than the offered rate; "
        "lower the rate or give the server more capacity; more --max-in-flight would only be refused too"
    )
    plain = _open_step(errors={"TritonRequestFailed('[StatusCode.INTERNAL] model failed')": 5})
    assert [note for note in plain.notes() if "raise --max-in-flight" in note]  # the client's limit, as before


def _stopped(url: str) -> str:
    said = request_failure(ServerStopped(url, answered=3), url, "mlp", RowsSent([], 64, 16), request_timeout_s=30.0)
    return str(said)


def test_evaluate_tells_a_hung_server_from_a_gone_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listening socket that never answers stands in for a SIGSTOPped tritonserver (the kernel still takes its
    connections); liveness is not asked (it would wait its 5 s for nothing)."""
    monkeypatch.setattr(evaluator_failures, "answers_now", lambda url: False)
    head = "stopped answering during the run (after 3 of 16 batches of model 'mlp')"
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        url = f"127.0.0.1:{hung.getsockname()[1]}"
        assert _stopped(url) == (
            f"the server at {url} {head} and is hung, not gone: its port still takes connections but it answers "
            "nothing; no figure of this run counts: kill it (SIGKILL: a hung process ignores SIGTERM) and start it "
            "again, or let `serve` restart it (--hang-timeout), then run evaluate again"
        )
    assert _stopped(url) == (
        f"the server at {url} {head}; no figure of this run counts: start it again and run evaluate again"
    )
