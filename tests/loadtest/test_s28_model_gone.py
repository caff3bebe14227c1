"""A load test whose model stops being served mid-run ends within a second, keeps its figures, and says so in one line
with exit 1 (`loadtest.model_gone`). A prober (pl7) removed a model under a polling `serve` mid-run: the run sent 10.8 s
more of Triton's "Request for unknown model" answers, 754 failed requests, then its notes. A NOT_SERVED answer while
the model stays ready (a version swapping in) ends nothing: the run asks Triton before it stops.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from loadtest.interruption import MeasuredSteps
from loadtest.load_run import LoadRun
from loadtest.model_gone import (
    ASK_EVERY_S,
    SETTLE_S,
    ModelGone,
    ModelGoneResult,
    ServedCheck,
    cut_short,
    read_gone,
    write_gone,
)
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.triton_metrics import scrape, served_versions
from quantserve.cli import main
from quantserve.cli.loadtest_status import failure_status

UNKNOWN_VERSION = "Request for unknown model: 'slow' version 3 is not at ready state"
GONE_LINE = (
    "model 'slow' version 3 stopped being served 4.2 s into the window (after 1530 requests answered; a deploy or "
    "rollback meanwhile?): the run was cut short; figures up to then kept"
)


def _not_served() -> InferenceServerException:
    return InferenceServerException(UNKNOWN_VERSION, status="StatusCode.UNAVAILABLE")


def test_a_not_served_answer_is_judged_by_asking_whether_the_model_is_ready() -> None:
    check, asked = ServedCheck(), list[bool]()

    def ready(answer: bool) -> Callable[[], bool]:
        def ask() -> bool:
            asked.append(answer)
            return answer

        return ask

    # a version swapping in: the model stays ready, so the run goes on
    assert not check.judge(_not_served(), 100.0, ("slow", "3"), ready(True), now=1.0)
    assert check.to_tell() is None
    # asked at most once per ASK_EVERY_S; a failure that is not Triton's NOT_SERVED asks nothing
    assert not check.judge(_not_served(), 100.1, ("slow", "3"), ready(False), now=1.0 + ASK_EVERY_S / 2)
    refused = InferenceServerException("failed to connect to all addresses", status="StatusCode.UNAVAILABLE")
    assert not check.judge(refused, 100.2, ("slow", "3"), ready(False), now=9.0)
    assert asked == [True]

    def no_answer() -> bool:
        raise InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED")

    assert not check.judge(_not_served(), 100.3, ("slow", "3"), no_answer, now=10.0)  # no answer: no verdict
    assert not check.judge(_not_served(), 104.2, ("slow", "3"), ready(False), now=11.0)  # the first "no"
    assert check.judge(_not_served(), 105.3, ("slow", "3"), ready(False), now=11.0 + SETTLE_S)  # held SETTLE_S
    said = f"[StatusCode.UNAVAILABLE] {UNKNOWN_VERSION}"
    assert check.to_tell() == {"at": 104.2, "model": "slow", "version": "3", "said": said}
    assert check.to_tell() is None  # told once


def test_the_record_is_placed_in_the_window_and_said_in_one_line(tmp_path: Path) -> None:
    write_gone(tmp_path, {"at": 104.2, "model": "slow", "version": "3", "said": UNKNOWN_VERSION})
    # 1530 answered before it went, one answered after, one refused
    samples = np.array([[100.5, 1.0, 1.0]] * 1530 + [[104.3, 1.0, 1.0], [104.25, 0.5, 0.0]])
    gone = read_gone(tmp_path, 100.0, 105.0, samples)
    assert gone is not None and gone.after_s == pytest.approx(4.2)
    assert (gone.model, gone.version, gone.answered, gone.said, gone.steps_left) == (
        "slow",
        "3",
        1530,
        UNKNOWN_VERSION,
        0,
    )
    assert gone.line() == GONE_LINE
    assert read_gone(tmp_path, 90.0, 104.0, samples) is None  # it went after the window had ended as planned
    assert read_gone(tmp_path / "none", 100.0, 105.0, samples) is None
    unpinned = ModelGone("slow", "", 0.04, 12, "", steps_left=2)
    assert unpinned.line().startswith("model 'slow' stopped being served 0.0 s into the window (after 12 requests")
    assert unpinned.line().endswith("the run was cut short (2 later steps not run); figures up to then kept")


def _result(requests: int = 1531, failed: int = 1) -> LoadResult:
    return LoadResult(
        "slow", "127.0.0.1:1", "closed", 4, 4.3, requests, failed, 350.0, 350.0, LatencySummary.from_samples(np.ones(3))
    )


@pytest.mark.parametrize("allowed", [False, True])
def test_a_cut_step_exits_1_in_its_one_line_alone(capsys: pytest.CaptureFixture[str], allowed: bool) -> None:
    cut = cut_short(_result(), ModelGone("slow", "3", 4.2, 1530, UNKNOWN_VERSION), planned_s=60.0)
    assert cut.planned_window_s == 60.0 and cut.requests == 1531  # saved as any result: the window asked for kept
    assert failure_status([LoadRun("slow", [cut])], allowed) == 1
    assert capsys.readouterr().err == (
        f"quantserve loadtest: slow @ 4 users: {GONE_LINE} (notes above, report written); exit 1\n"
    )


def test_no_step_starts_after_a_cut_one_and_the_run_is_saved(tmp_path: Path) -> None:
    with MeasuredSteps("slow", 3, tmp_path) as measured:
        for step in ("u1", "u2", "u4"):
            measured.start(step)
            measured.finish(cut_short(_result(), ModelGone("slow", "", 4.2, 1530, ""), 60.0))
    (result,) = measured.run().results
    assert isinstance(result, ModelGoneResult) and result.gone.steps_left == 2
    measured.run().save(tmp_path)
    assert LoadRun.load(tmp_path / "load-slow.json").results[0].planned_window_s == 60.0


DURATION_S = 60


@pytest.mark.e2e
def test_a_model_unloaded_mid_run_ends_the_run_with_its_figures(
    triton_server_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, data = models.own_mlp_repo(tmp_path)
    server = triton_server_factory(repo, model_control="explicit", load_models=("*",))

    def unload_once_loaded() -> None:
        deadline = time.monotonic() + 60
        while (
            served_versions(scrape(server.metrics_url), "mlp").get("1", {}).get("nv_inference_request_success", 0) < 50
        ):
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        server.control().unload("mlp")

    unloading = threading.Thread(target=unload_once_loaded, daemon=True)
    unloading.start()
    out = tmp_path / "out"
    args = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--out", str(out)]
    code = main([*args, "--users", "2", "--duration", f"{DURATION_S}s", "--metrics-url", server.metrics_url])
    unloading.join(timeout=5)
    err = capsys.readouterr().err
    assert code == 1
    line = re.search(
        r"quantserve loadtest: mlp @ 2 users: model 'mlp' stopped being served ([\d.]+) s into the window "
        r"\(after (\d+) requests answered; a deploy or rollback meanwhile\?\): the run was cut short; "
        r"figures up to then kept \(notes above, report written\); exit 1\n",
        err,
    )
    assert line is not None, err
    assert "requests failed" not in err  # the one line, not the failures line beside it
    (result,) = json.loads((out / "load-mlp.json").read_text())["results"]
    assert result["planned_window_s"] == DURATION_S and result["window_s"] < DURATION_S / 2  # ended well before
    assert result["requests"] - result["failed_requests"] >= int(line[2]) > 0  # the figures up to then kept
