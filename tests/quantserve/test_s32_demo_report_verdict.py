"""`quantserve demo` tells its report's verdict on the terminal, and `quantserve report` keeps it (issue 11).

A fresh-clone `make demo` on an AMD EPYC without VNNI: the INT8 build timed 0.93× FP32 in-process ("slower", served
with --allow-slower), report.md opened `FAIL · INT8 1.15× FP32 served … · 0.93× in-process`, yet the terminal said
only "INT8 vs FP32: 1.15× served throughput, accuracy drop -0.20 points", summary.json held no in-process figure, and
`quantserve report reports/demo` (no --build, as the README shows it) rewrote the verdict to PASS.

tritonserver, training, optimize and Locust are stood in for: the runs and the build's manifest are written as the
demo's are.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadtest.load_run import LoadRun
from loadtest.recorded_builds import BUILDS_FILE
from quantserve.cli import demo, main
from quantserve.errors import QuantserveError
from tests.quantserve.test_s30_demo_truth import IDENTITY, NAMES, _step

SLOWER = {"speedup": 0.93, "verdict": "slower", "holds": False, "threads": 2, "cpu": "AMD EPYC", "min_speedup": 1.1}
FAILURE = "digits_int8: INT8 0.93× FP32 in-process, below its speed budget"


def _measure(settings: demo.DemoSettings, names: list[str], heldout: Path, say: Any) -> dict[str, Any]:
    """Both variants' runs saved as the demo saves them: INT8 1.15× FP32 served at 16 users, the machine idle."""
    steps = {NAMES[0]: _step(NAMES[0], 16, 8.2), NAMES[1]: _step(NAMES[1], 16, 9.43)}
    for name, step in steps.items():
        LoadRun(name, [step], precision=name.rpartition("_")[2], identity=IDENTITY).save(settings.out)
    variants = [SimpleNamespace(model=n, accuracy=0.9824, top1_agreement=1.0) for n in NAMES]
    return {"accuracy": SimpleNamespace(variants=variants, over_budget=[]), "loads": steps}


def _builds(build: Path) -> None:
    """The two builds' manifests as optimize writes them: INT8's timed slower in-process, FP32's untimed."""
    for name, speed in ((NAMES[0], None), (NAMES[1], SLOWER)):
        (build / name).mkdir(parents=True)
        precision = name.rpartition("_")[2]
        manifest = {"name": name, "precision": precision, "verification": {"speed": speed} if speed else {}}
        (build / name / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[demo.DemoSettings, dict[str, Any]]:
    monkeypatch.setattr(demo, "prepare_model", lambda settings, say, heartbeat: {"heldout": tmp_path / "heldout.npz"})
    monkeypatch.setattr(demo, "optimize_and_deploy", lambda settings, files, say, heartbeat: NAMES)
    monkeypatch.setattr(demo, "measure", _measure)
    settings = demo.DemoSettings(out=tmp_path / "reports" / "demo", build=tmp_path / "build" / "demo", tune=False)
    settings.out.mkdir(parents=True)
    _builds(settings.build)
    return settings, demo.run_demo(settings, lambda line: None)


def test_the_summary_records_the_in_process_speed_and_the_reports_verdict(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]],
) -> None:
    settings, _ = demo_run
    summary = json.loads((settings.out / "summary.json").read_text())
    recorded = {"speedup": 0.93, "verdict": "slower", "holds": False, "threads": 2}  # no load recorded: no caveat
    assert summary["int8_in_process"] == {**recorded, "busy": None, "others_share": None, "caveats": []}
    assert (summary["report"]["verdict"], summary["report"]["failures"]) == ("FAIL", [FAILURE])
    assert summary["report"]["headline"].endswith("· 0.93× in-process (digits_int8, 2 threads)")
    assert "**FAIL · INT8 1.15× FP32 served" in (settings.out / "report.md").read_text()


def test_the_terminal_says_the_in_process_speed_and_the_reports_fail(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from quantserve.cli.commands.demo import print_summary

    print_summary(demo_run[1], Console(width=200))  # one line each, unwrapped
    lines = capsys.readouterr().out.splitlines()
    verdict = lines.index(
        "INT8 vs FP32: 0.93× in-process (slower here: served anyway, --allow-slower), 1.15× served throughput, "
        "accuracy drop 0.00 points"
    )  # before: "INT8 vs FP32: 1.15× served throughput, accuracy drop 0.00 points", and no word of FAIL
    assert lines[verdict + 1] == f"report: FAIL ({FAILURE})"


def test_report_without_build_keeps_the_demos_in_process_fail(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, _ = demo_run
    assert main(["report", str(settings.out)]) == 1  # before: 0, the verdict rewritten to PASS
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL · INT8 1.15× FP32 served")
    assert "· 0.93× in-process (digits_int8, 2 threads)**" in (settings.out / "report.md").read_text()
    recorded = json.loads((settings.out / BUILDS_FILE).read_text())["builds"]
    assert recorded == ["../../build/demo/digits_fp32", "../../build/demo/digits_int8"]  # the clone moved whole


def test_a_recorded_build_gone_is_refused_in_one_line(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtest.report import render

    settings, _ = demo_run
    (settings.build / NAMES[1] / "manifest.json").unlink()
    builds = settings.out / BUILDS_FILE
    with pytest.raises(QuantserveError) as refused:
        render(settings.out)
    gone = settings.out.parent.parent / "build" / "demo" / NAMES[1]
    assert str(refused.value) == (
        f"{builds}: recorded build {gone} has no manifest.json (moved or removed): pass --build FOLDER, or delete "
        f"{builds} to report without the in-process speed"
    )
    assert main(["report", str(settings.out), "--build", str(settings.build / NAMES[0])]) == 0  # --build overrides


def test_a_rerun_of_the_demo_clears_the_earlier_runs_record_of_builds(tmp_path: Path) -> None:
    (tmp_path / BUILDS_FILE).write_text('{"builds": ["../gone"]}')
    demo.clear_previous_run(tmp_path)
    assert not (tmp_path / BUILDS_FILE).exists()


def test_a_build_of_another_model_is_refused_naming_both_sources(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report reports/digits --build build/text_int8` took the text encoder's in-process speed as the digits
    verdict (session 40): the runs recorded source `sha256:src`, the build's FP32 reference hashes otherwise."""
    settings, _ = demo_run
    other = tmp_path / "text_int8"
    other.mkdir()
    (other / "fp32.bin").write_bytes(b"another model's reference")
    manifest = {"name": "text_int8", "precision": "int8", "files": {"reference": "fp32.bin"}, "inputs": []}
    (other / "manifest.json").write_text(json.dumps({**manifest, "outputs": [], "verification": {"speed": SLOWER}}))
    assert main(["report", str(settings.out), "--build", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: --build {other}: a build of another model than {settings.out}'s runs")
    assert "theirs sha256:src…" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "what"), [('{"name": "digits_int8", "verif', "JSONDecodeError"), ("[1, 2]", "a JSON list")]
)
def test_a_damaged_build_manifest_is_one_line(
    demo_run: tuple[demo.DemoSettings, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str], text, what
) -> None:
    """A truncated manifest.json was a JSONDecodeError traceback and exit 1, report's FAIL code (session 40)."""
    settings, _ = demo_run
    bad = tmp_path / "badbuild"
    bad.mkdir()
    (bad / "manifest.json").write_text(text)
    assert main(["report", str(settings.out), "--build", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: {bad / 'manifest.json'}: not a") and what in err and err.count("\n") == 1
