"""`quantserve loadtest` exits 1 where the report it wrote reads FAIL, as `quantserve report` does (session 57).

A load test of a build shipped past its drift budget (`optimize --keep-failing`) wrote a report reading FAIL and
exited 0: its exit status rested on failed requests alone, so a CI step gating on it passed the build. Now a FAIL
verdict exits 1 with one stderr line naming its first cause, every file written. The e2e test serves a model's
faithful version 1 beside its kept-failing version 2: each load run is judged by its own version's record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.report import load_results
from quantserve.cli import main
from quantserve.cli.loadtest_status import verdict_status
from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from tests.loadtest.verdict_records import KEPT_FAILING, RECORDED, dense_build, fp32_int8_results

FAITHFUL = {**KEPT_FAILING, "holds": True, "violations": []}


def test_a_fail_verdict_is_exit_1_with_one_line_naming_its_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict_status(load_results(fp32_int8_results(tmp_path / "kept", [RECORDED]))) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"quantserve loadtest: the report's verdict is FAIL: pxl_int8: its build {RECORDED} (its deployment's record; "
        "a load test measures no drift: evaluate it through the server) (report written); exit 1"
    )
    assert verdict_status(load_results(fp32_int8_results(tmp_path / "held", None))) == 0
    assert not capsys.readouterr().err


def test_failed_requests_are_left_to_failure_status_and_allow_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A verdict failed by failed requests alone: `failure_status` says it (or `--allow-failures` allows it)."""
    folder = fp32_int8_results(tmp_path / "failed", None)
    inputs = load_results(folder)
    step = inputs.runs[1].results[0]
    step.failed_requests = 3
    inputs.runs[1].save(folder)
    inputs = load_results(folder)
    assert inputs.verdict.failures and not inputs.verdict.passed
    assert verdict_status(inputs) == 0 and not capsys.readouterr().err


@pytest.mark.e2e
def test_loadtest_exits_1_on_the_kept_failing_version_and_0_on_the_faithful_one(
    tmp_path: Path, triton_server_factory: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, live = tmp_path / "repo", ServingPolicy(live_versions=2)
    deploy(dense_build(tmp_path / "v1", FAITHFUL), repo, "pxl_int8", max_batch=8, policy=live)
    deploy(dense_build(tmp_path / "v2", KEPT_FAILING), repo, "pxl_int8", max_batch=8, policy=live)
    server = triton_server_factory(repo)
    np.savez(data := tmp_path / "x.npz", x=np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    common = ["-q", "loadtest", "--url", server.grpc_url, "--data", str(data), "--users", "1", "--duration", "1s"]  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main([*common, "--model", "pxl_int8@1", "--out", str(tmp_path / "v1")]) == 0, capsys.readouterr().err
    assert "verdict is FAIL" not in capsys.readouterr().err
    assert main([*common, "--model", "pxl_int8", "--out", str(tmp_path / "newest")]) == 1  # Triton's newest: 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"quantserve loadtest: the report's verdict is FAIL: pxl_int8: its build {RECORDED}")
    assert (tmp_path / "newest" / "report.md").is_file() and "FAIL" in (tmp_path / "newest" / "report.md").read_text()
