"""A staged load says which model versions answered each stage, from Triton's own answers (session 50).

A staged load during which the model was swapped (a deploy, a rollback) said so only for the whole run ("served
versions changed during the run (1 → 2)"): the stage rows carried no word of it, and a reader put the step in latency
down to the stage's users.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.recording_files import SAMPLE_COLUMNS, VERSION_COLUMN, answering_version
from loadtest.report_lines import stage_cells
from loadtest.stage_figures import (
    StageFigures,
    read_stage_starts,
    spans_note,
    stage_figures,
    version_spans,
    versions_note,
    write_stage_start,
)
from loadtest.triton_metrics import scrape, served_versions
from quantserve.cli import main


def _rows(ends: list[float], versions: list[int], ok: list[int]) -> np.ndarray:
    rows = np.zeros((len(ends), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, VERSION_COLUMN] = ends, 2.0, ok, versions
    return rows


def _three_stages(tmp_path: Path) -> list[dict]:
    for number, at in ((1, 100.0), (2, 104.0), (3, 108.0)):
        write_stage_start(tmp_path, number, 3, 2, 4.0, at)
    return read_stage_starts(tmp_path)


def test_each_stage_keeps_the_versions_that_answered_it(tmp_path: Path) -> None:
    rows = _rows([101.0, 103.0, 105.0, 106.0, 107.0, 109.0, 111.0], [1, 1, 1, 2, 0, 2, 2], [1, 1, 1, 1, 0, 1, 1])
    first, swapped, last = stage_figures(rows, 100.0, 112.0, _three_stages(tmp_path))
    assert (first.versions, swapped.versions, last.versions) == ([1], [1, 2], [2])  # a failure names none
    assert stage_cells(swapped)[0] == "2/3 (v1+2)" and stage_cells(first)[0] == "1/3"
    note = versions_note("mlp staged", [first, swapped, last])
    assert note == (
        "mlp staged: the model's served version changed during the stages — stage 1/3 by version 1; 2/3 by "
        "versions 1 and 2; 3/3 by version 2; the swap fell inside stage 2/3, whose figures are of both: the stages' "
        "figures differ by the version as well as by their users"
    )


def test_one_version_throughout_and_records_from_before_say_nothing(tmp_path: Path) -> None:
    starts = _three_stages(tmp_path)
    same = stage_figures(_rows([101.0, 105.0, 109.0], [3, 3, 3], [1, 1, 1]), 100.0, 112.0, starts)
    assert [s.versions for s in same] == [[3], [3], [3]] and versions_note("m", same) is None
    older = stage_figures(np.array([[101.0, 2.0, 1.0], [105.0, 2.0, 1.0]]), 100.0, 112.0, starts)
    assert [s.versions for s in older] == [None, None, None] and versions_note("m", older) is None
    unnamed = stage_figures(_rows([101.0, 105.0], [0, 0], [1, 1]), 100.0, 112.0, starts)  # widened 8-column rows
    assert unnamed[0].versions is None
    written = {k: v for k, v in vars(same[0]).items() if k != "versions"} | {"latency": vars(same[0].latency)}
    saved = StageFigures.from_dict(written)
    assert saved.versions is None  # a results file from before the field reads


def test_a_response_s_version_string_is_read_as_a_number() -> None:
    assert (answering_version("2"), answering_version("17"), answering_version("")) == (2.0, 17.0, 0.0)


@pytest.mark.e2e
def test_a_deploy_mid_stage_is_said_stage_by_stage(triton_server_factory, tmp_path: Path) -> None:
    """A real tritonserver, a staged load, version 2 deployed during stage 2: stage 1 answered by version 1, the
    last by version 2, and the note says where the swap fell."""
    repo, v2, data = models.version_swap_repo(tmp_path)
    server = triton_server_factory(repo, model_control="explicit", load_models=("*",))
    target = ["--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--out", str(tmp_path / "out")]
    codes: list[int] = []
    load = threading.Thread(target=lambda: codes.append(main(["loadtest", *target, "--stages", "2:4s,2:6s,2:4s"])))
    load.start()
    deadline = time.monotonic() + 30
    while served_versions(scrape(server.metrics_url), "mlp").get("1", {}).get("nv_inference_request_success", 0) < 50:
        assert time.monotonic() < deadline, "the load never reached the server"
        time.sleep(0.2)
    time.sleep(5.0)  # into stage 2 (4 s to 10 s of the window)
    assert (
        main(
            ["deploy", str(v2), "--repo", str(repo), "--name", "mlp", "--max-batch", "32", "--url", server.control_url]
        )
        == 0
    )
    load.join(timeout=90)
    assert codes == [0]
    (result,) = LoadRun.load(tmp_path / "out" / "load-mlp-staged.json").results
    first, *_, last = result.stages
    assert 1 in (first.versions or []) and last.versions == [2], [s.versions for s in result.stages]
    assert any("the model's served version changed during the stages" in note for note in result.notes())
    saved = json.loads((tmp_path / "out" / "load-mlp-staged.json").read_text())
    assert saved["results"][0]["stages"][-1]["versions"] == [2]
    assert [span["version"] for span in result.version_spans or []] == [1, 2]


def test_a_swap_and_a_swap_back_is_said_with_when_each_version_answered() -> None:
    """Version 1, then 2, then 1 again (a deploy, then a rollback): the same version served at the start and the end,
    which the reads at both saw as no change."""
    rows = _rows([101.0, 103.0, 105.0, 106.0, 109.0, 111.0], [1, 1, 2, 2, 1, 0], [1, 1, 1, 1, 1, 0])
    spans = version_spans(rows[rows[:, 2] > 0.5], 100.0)
    assert spans == [
        {"version": 1, "first_s": 1.0, "last_s": 3.0, "answers": 2},
        {"version": 2, "first_s": 5.0, "last_s": 6.0, "answers": 2},
        {"version": 1, "first_s": 9.0, "last_s": 9.0, "answers": 1},
    ]
    assert spans_note("mlp", spans) == (
        "mlp: answered by version 1 from 1.0 s to 3.0 s (2 answers), then version 2 from 5.0 s to 6.0 s (2 answers), "
        "then version 1 again from 9.0 s to 9.0 s (1 answer) of its window: its figures are of all of them"
    )
    assert spans_note("mlp", spans[:1]) is None and spans_note("mlp", None) is None
    assert version_spans(np.array([[101.0, 2.0, 1.0]]), 100.0) is None  # a record from before: not kept
