"""`quantserve bench` cut by Ctrl-C or SIGTERM mid-run (session 31, issue 11): the rows measured are kept.

Before: bench.json was written only once a model's last repeat ended, so a cut mid-model lost every row it had
measured (`bench --quick` cut in its served rows, 3 or 4 of 5 rows measured: no bench.json, "quantserve:
interrupted"). Now bench.json is saved atomically with them, marked interrupted, each row the cut left unmeasured
named. No server, no model: the model, its deploy and the repeats are faked, the rows given.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import quantserve.cli.bench as bench
import quantserve.cli.bench_peak as peak
import quantserve.cli.bench_served as served
from quantserve.cli.bench_interrupted import NEVER_MEASURED, BenchInterrupted


class FakeServer:
    def __init__(self, *args: Any) -> None:
        self.server = SimpleNamespace(pid=0)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def figures(value: float) -> dict[str, float]:
    return {"saturation_samples_per_s": value, "concurrent_samples_per_s": value, "p50_ms": 1.0, "p99_ms": 2.0}


def repeats_cut_in_the_second(rows: dict, *args: Any) -> None:
    """Repeat 1 measures rows 1-4 (row 5 never comes); repeat 2 measures rows 1 and 2, then the cut."""
    repeat = args[-2]
    for row in (1, 2, 3, 4) if repeat == 1 else (1, 2):
        rows[row].add(figures(100.0 * row))
    if repeat == 2:
        raise KeyboardInterrupt


@pytest.fixture
def faked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bench.BenchSettings:
    model = SimpleNamespace(
        name="tiny", description="a tiny CNN", request_batch=1, module=object(), path=lambda f: tmp_path / f
    )
    prepared = SimpleNamespace(model=model, builds={"fp32": tmp_path, "int8": tmp_path}, records={}, source={})
    config = {"max_batch": 0, "max_queue_delay_us": 0, "instances": 1}
    setup = SimpleNamespace(naive="n", tuned="t", naive_config=config, tuned_config=config, tune={}, repo=tmp_path)
    monkeypatch.setattr(peak, "PeakTracker", lambda *args: SimpleNamespace(measure=lambda: None, best=lambda p: None))
    monkeypatch.setattr(bench, "giga", lambda record: "1.0")
    monkeypatch.setattr(bench, "prepare", lambda *args: prepared)
    monkeypatch.setattr(bench, "deploy_rows", lambda *args: setup)
    monkeypatch.setattr(bench, "inprocess_runners", lambda *args: {1: None, 2: None, 3: None})
    monkeypatch.setattr(bench, "measure_repeat", repeats_cut_in_the_second)
    monkeypatch.setattr(served, "BenchServer", FakeServer)
    return bench.BenchSettings.quick_run(out=tmp_path / "out", models=("tiny", "demo"), repeats=2, slo_p99_ms=5.0)


def cut(settings: bench.BenchSettings) -> BenchInterrupted:
    """The interrupt `run_bench` raises; a bare KeyboardInterrupt (what was measured lost) fails the test, not the
    whole pytest session."""
    try:
        bench.run_bench(settings, lambda line: None)
    except BenchInterrupted as stop:
        return stop
    except KeyboardInterrupt:
        pytest.fail("the cut lost what was measured: a bare KeyboardInterrupt")
    pytest.fail("the cut did not interrupt the bench")


def test_a_cut_mid_repeat_saves_the_rows_measured_and_names_the_missing(faked: bench.BenchSettings) -> None:
    stop = cut(faked)
    document = json.loads((faked.out / "bench.json").read_text())
    assert stop.path == faked.out / "bench.json"
    runs = {row["row"]: row["p99_ms"]["runs"] for row in document["models"]["tiny"]["rows"]}
    assert runs == {1: [2.0, 2.0], 2: [2.0, 2.0], 3: [2.0], 4: [2.0], 5: []}
    row5 = document["models"]["tiny"]["rows"][4]
    assert row5["not_measured"] == NEVER_MEASURED
    assert document["models"]["tiny"]["ratios"]["5/4"]["value"] is None  # no ratio from a row never measured
    assert document["models"]["tiny"]["ratios"]["3/2"]["value"] == pytest.approx(1.5)
    assert document["interrupted"]["during"] == "tiny repeat 2"
    assert document["interrupted"]["missing"] == [
        "tiny: row(s) 5, row 3 in 1 of 2 repeats, row 4 in 1 of 2 repeats",
        "demo: every row",
    ]
    assert "the 4 row(s) measured are in" in stop.line and "missing: tiny: row(s) 5" in stop.line


def test_the_command_says_it_was_interrupted_and_exits_130(
    faked: bench.BenchSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    from quantserve.cli import main

    argv = ["bench", "--models", "tiny,demo", "--repeats", "2", "--slo-p99-ms", "5", "--out", str(faked.out)]
    assert main([*argv, "--tune-trials", "0", "--build", str(faked.build)]) == 130
    err = capsys.readouterr().err
    assert "quantserve: bench: interrupted during tiny repeat 2" in err and "missing: tiny: row(s) 5" in err
    assert json.loads((faked.out / "bench.json").read_text())["interrupted"]["after_s"] >= 0
