"""deploy weighs --max-batch (and --instances) against the FP32 footprint optimize measured (serving.batch_memory;
session 55). Session 54: the demo's model deployed with `--max-batch 2000000` grew to 20 GB on a request of 1 024 000
rows and the kernel killed it, deploy having said nothing; its process grew ~20 KB a row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optimizer.timing_rows import Footprint, TimingRows
from quantserve.artifact import Manifest
from quantserve.cli import main
from serving import endpoints
from serving.batch_memory import MeasuredFootprint, batch_memory_line, measured_footprint
from serving.versions import existing_versions

GB = 10**9
DEMO = MeasuredFootprint(session_bytes=100 * 10**6, row_bytes=20_000)  # ~20 KB a row, as session 54's model grew


def _stages(footprint: Footprint | None) -> list[dict]:
    rows = TimingRows(8, 8, footprint=footprint).to_dict()  # as optimize writes it
    return [{"stage": "export"}, {"stage": "calibrate", "speed": {"timing_rows": rows}}]


def test_a_full_batch_is_counted_once_an_instance() -> None:
    footprint = MeasuredFootprint(session_bytes=100, row_bytes=10, fixed_bytes=50)
    assert footprint.batch_bytes(8) == 100 + 50 + 8 * 10
    assert footprint.batch_bytes(8, instances=3) == 3 * (100 + 50 + 8 * 10)
    assert footprint.rows_within(3 * 230, instances=3) == 8 and footprint.rows_within(100) == 0


def test_the_footprint_is_read_where_optimize_writes_it() -> None:
    found = measured_footprint(_stages(Footprint(session_bytes=7, row_bytes=5, fixed_bytes=3)))
    assert found == MeasuredFootprint(7, 5, 3)
    assert measured_footprint(_stages(None)) is None  # an older manifest, or none measured


def test_a_max_batch_past_half_the_memory_is_warned_in_one_line() -> None:
    stages = _stages(Footprint(DEMO.session_bytes, DEMO.row_bytes))
    assert batch_memory_line(stages, 2_000_000, 1, total=24 * GB) == (
        "--max-batch 2000000 would need ~40 GB of memory at a full batch (1 instance; optimize measured ~20 KB a row "
        "in FP32, INT8 counted the same): this machine has 24 GB, and a batch that large can get the model's "
        "process killed: lower --max-batch (at most ~595000 rows fit in half the memory)"
    )
    two = batch_memory_line(stages, 400_000, 2, total=24 * GB)  # 8.1 GB each, 16.2 in all
    assert two.startswith("--max-batch 400000 would need ~16 GB of memory at a full batch (2 instances, each its own")
    assert "at most ~295000 rows fit" in two


def test_no_warning_at_a_batch_that_fits_without_figures_or_unbatched() -> None:
    stages = _stages(Footprint(DEMO.session_bytes, DEMO.row_bytes))
    assert batch_memory_line(stages, 64, 1, total=24 * GB) == ""
    assert batch_memory_line(stages, 595_000, 1, total=24 * GB) == ""  # just within half
    assert batch_memory_line(_stages(None), 2_000_000, 1, total=24 * GB) == ""
    assert batch_memory_line(stages, 0, 1, total=24 * GB) == ""


def _with_footprint(build: Path, row_bytes: int) -> Path:
    manifest = Manifest.load(build)
    manifest.stages.extend(_stages(Footprint(session_bytes=10**6, row_bytes=row_bytes))[1:])
    manifest.save(build)
    return build


def _deploy(build: Path, repo: Path, *flags: str) -> int:
    return main(["deploy", str(build), "--repo", str(repo), "--name", "dense", *flags])


def test_deploy_warns_and_still_deploys_also_a_kept_max_batch(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))  # no serve of this repository runs
    os.makedirs(tmp_path / "run")
    build, repo = _with_footprint(dense_build, row_bytes=10**13), tmp_path / "repo"  # 10 TB a row: any machine
    assert _deploy(build, repo, "--max-batch", "64") == 0
    err = capsys.readouterr().err
    assert "warning: --max-batch 64 would need ~" in err and "lower --max-batch" not in err, err  # not one row fits
    assert "a batch that large can get the model's process killed: lower --instances" in err
    assert _deploy(build, repo, "--instances", "2") == 0  # the max batch kept from the config is weighed too
    captured = capsys.readouterr()
    assert "--max-batch 64" in captured.out and "(2 instances, each its own session;" in captured.err, captured
    assert existing_versions(repo / "dense") == [1, 2]


def test_deploy_says_nothing_where_the_batch_fits(
    dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    os.makedirs(tmp_path / "run")
    assert _deploy(_with_footprint(dense_build, row_bytes=1000), tmp_path / "repo", "--max-batch", "64") == 0
    assert "memory" not in capsys.readouterr().err
