"""A report's in-process figure is the one that decided: on a busy machine optimize judges INT8 by CPU time
(`optimizer.speed_blocks`) and printed "4.42× (9.61 → 2.19 ms), busy: …; by CPU time 3.13×, which decided", yet
`quantserve report` read "4.42× in-process" — the wall clock's — from the build and from the deployment's record,
which kept neither the clock nor CPU time's figure (probe 65E)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_s52_in_process_busy import BUSY, _build, _runs

from loadtest.in_process_speed import in_process_entry
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from quantserve.cli import main
from serving.build_parameters import recorded_speed
from serving.deploy import deploy
from serving.model_config import CONFIG_NAME, parse_config

BY_CPU = {**BUSY, "speedup": 4.42, "others_share": 0.64, "basis": "CPU time", "cpu_speedup": 3.13}
SAID = "3.13× in-process (busy_int8, 2 threads), caveat: others took 64% of the cores while optimize timed it: "
SAID += "judged by CPU time (4.42× by the wall clock)"


def test_the_entry_quotes_cpu_times_figure_where_it_decided_and_the_wall_clocks_beside_it() -> None:
    entry = in_process_entry("m", BY_CPU)
    assert (entry["speedup"], entry["wall_speedup"]) == (3.13, 4.42)
    assert in_process_entry("m", {**BY_CPU, "basis": "wall clock"})["speedup"] == 4.42
    assert "wall_speedup" not in in_process_entry("m", BUSY)  # a record from before the clock was kept


def test_report_with_build_quotes_the_figure_that_decided(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    _runs(results, None)
    assert main(["report", str(results), "--build", str(_build(tmp_path / "build", BY_CPU))]) == 0
    headline = capsys.readouterr().out.splitlines()[-1]
    assert headline.endswith(f"· {SAID}"), headline


def test_the_deployments_record_keeps_the_clock_and_the_report_quotes_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(_build(tmp_path / "build", BY_CPU), repo, "busy_int8", max_batch=8)
    recorded = recorded_speed(parse_config(repo / "busy_int8" / CONFIG_NAME))
    assert recorded is not None and (recorded["basis"], recorded["cpu_speedup"]) == ("CPU time", 3.13)
    _runs(tmp_path / "results", recorded)
    assert verdict_headline(load_results(tmp_path / "results").verdict).endswith(f"· {SAID}")
