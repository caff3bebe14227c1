"""Real load tests merged into one results folder, as a prober did: each run records its client machine and the
machine's CPU beside the server's, and the report pairs FP32 with INT8 only at one request batch (FP32 at 1 sample a
request against INT8 at 8 was "PASS · INT8 1.10× FP32 served" while INT8 sent 8.8× the inferences)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from loadtest.load_run import LoadRun
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.verdict import load_failures
from quantserve.cli import main
from serving.machine import cpu_facts

pytestmark = pytest.mark.e2e


def test_merged_runs_record_their_machine_and_pair_only_one_request_batch(
    served_models: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = served_models
    fp32, int8 = served.fp32, served.int8  # type: ignore[attr-defined]
    common = ["--url", served.url, "--data", str(served.load_data), "--out", str(tmp_path)]  # type: ignore[attr-defined]
    common += ["--users", "2", "--duration", "2s"]
    code = main(["-q", "loadtest", *common, "--model", f"{fp32},{int8}"])
    verdict = load_results(tmp_path).verdict  # a FAIL report (this toy INT8 may serve slower) exits 1, as `report`
    assert code == (1 if verdict.failures else 0) and not load_failures(load_results(tmp_path).runs), verdict.failures
    run = LoadRun.load(tmp_path / f"load-{fp32}.json")
    assert run.identity is not None and run.identity.client_host == socket.gethostname()
    assert (run.identity.client_cpu, run.identity.client_cores) == (cpu_facts().model, cpu_facts().usable_cores)
    assert run.identity.config == "max batch 32, queue 500 µs, 1 instance"  # the loadtest conftest's deploy
    util = run.results[0].utilization
    assert util is not None and util.machine_cpu_pct_mean is not None and util.others_share is not None
    assert util.generator_cpu_pct_mean is not None and util.generator_cpu_pct_mean > 0  # the Locust process
    assert load_results(tmp_path).verdict.served is not None
    again = ["-q", "loadtest", *common, "--model", int8, "--request-batch", "4"]
    assert main(again) == 2  # it would replace the first run's record (`refuse_replacing`)
    (tmp_path / f"load-{int8}.json").unlink()  # the way out the refusal names
    assert main(again) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0  # no verdict, not a FAIL
    headline = capsys.readouterr().out.splitlines()[-1]
    assert headline == verdict_headline(load_results(tmp_path).verdict)
    assert headline.startswith(
        f"No verdict: {int8} and {fp32} were load-tested with different request sizes (--request-batch 4 vs 1, "
        f"load-{int8}.json vs load-{fp32}.json): their req/s do not compare"
    ), headline
