"""--request-batch beside a trace that sets each request's samples (session 31, issue 11), no Locust run here: the
flag was ignored in silence while `request_batch: 4` (or 1 without it) was recorded in load-*.json, which pairs runs
for A/B by it, for requests that carried 1 to 32 samples. Typed, it is refused in one line; from the environment it is
left unused with a note; the result records None (the trace's sizes are in its `trace` record).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.load_pattern import ClosedLoop, TraceReplay
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.run_pairing import pairing_problem
from loadtest.step_result import recorded_request_batch
from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: a run that passes the flags stops at the server check
NO_SERVER = f"quantserve: error: no Triton server answers at {DEAD_URL}\n"


def argv_for(tmp_path: Path) -> list[str]:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    out = ["--out", str(tmp_path / "out"), "--model", "m", "--data", str(data)]
    return ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, *out]


def _sized_trace(tmp_path: Path) -> Path:
    path = tmp_path / "sized.csv"
    path.write_text("timestamp,batch_size\n" + "".join(f"{k * 0.1:.1f},{1 + k % 32}\n" for k in range(20)))
    return path


def test_a_typed_request_batch_beside_a_sized_trace_is_refused_and_the_environments_is_left_unused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = _sized_trace(tmp_path)
    argv = [*argv_for(tmp_path), "--trace", str(trace)]
    assert cli.main([*argv, "--request-batch", "4"]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: --trace {trace} sets each request's samples (its request-size column); drop "
        "--request-batch\n"
    )
    monkeypatch.setenv("QUANTSERVE_REQUEST_BATCH", "4")
    assert cli.main(argv) == 2  # past the flags, on to the server check
    printed = capsys.readouterr()
    assert printed.err == NO_SERVER
    note = f"note: QUANTSERVE_REQUEST_BATCH=4 is not used: --trace {trace} sets each request's samples"
    assert printed.out.splitlines()[0] == f"{note} (its request-size column)"


def test_a_sized_traces_result_records_no_request_batch_and_a_plain_one_its_own(tmp_path: Path) -> None:
    sized = TraceReplay(str(_sized_trace(tmp_path)))
    plain = tmp_path / "plain.csv"
    plain.write_text("timestamp\n0\n0.1\n0.2\n")
    assert recorded_request_batch(sized, 4) is None
    assert recorded_request_batch(TraceReplay(str(plain)), 4) == 4
    assert recorded_request_batch(ClosedLoop(2), 1) == 1


def _run(model: str, request_batch: int | None) -> LoadRun:
    latency = LatencySummary(100, 2.0, 3.0, 3.5, 4.0, 2.2, 1.0, 5.0)
    step = LoadResult(model, "127.0.0.1:8001", "open", 0, 10.0, 100, 0, 10.0, 10.0, latency, request_batch)
    return LoadRun(model, [step])


def test_a_pair_told_apart_by_request_size_says_the_trace_set_them() -> None:
    problem = pairing_problem(_run("m_fp32", 1), _run("m_int8", None)) or ""
    assert "(the trace's request sizes vs --request-batch 1," in problem, problem
