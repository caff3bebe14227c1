"""`quantserve demo` tells the truth its pages tell (probe pl12 faults 1-3).

1. The terminal gave "INT8 vs FP32: 2.39× served" and tune's "3.36×" with no word that other processes took 56-72 %
   of the cores, while report.md's verdict and tune.html said so, and tune.html's re-measure (0.69× the claim) was in
   neither the terminal nor summary.json: now both carry them, in the pages' own words (`demo_caveats`).
2. Its load runs recorded no identity, so its own report said its models had no recorded source model: now each run
   records it as `quantserve loadtest`'s does.
3. A port range with too few free ports failed it after 4 min of training and optimizing, and deleted the previous
   run's results first: now the range is checked before any work, and old results are cleared once the server is up.

tritonserver, the accuracy pass, Locust and the search are stood in for: what is pinned is what is said and kept.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from html import escape
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadtest import evaluator, harness
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.utilization import Utilization
from quantserve.cli import demo, main
from quantserve.errors import QuantserveError
from serving import server
from serving.ports import WIDEN

NAMES = ["digits_fp32", "digits_int8"]
IDENTITY = RunIdentity("2026-12-01T00:00:00Z", ["1"], "sha256:src", "heldout.npz", "sha256:data")
OLD_RESULTS = ("load-digits_fp32.json", "load-digits_int8.json", "summary.json", "accuracy.json", "report.md")


class FakeServer:
    pid, grpc_url, metrics_url = 1, "127.0.0.1:1", "127.0.0.1:2"

    def __init__(self, options: Any) -> None:
        pass

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _step(model: str, users: int, rps: float, others: float | None = None) -> LoadResult:
    latency = LatencySummary.from_samples([1.0, 2.0, 3.0])
    step = LoadResult(model, "u", "closed", users, 10.0, int(rps * 10), 0, rps, rps * 16, latency, request_batch=16)
    if others is not None:  # the machine busy: others' share of its 2 cores is (machine - server - generator) / 200
        step.utilization = Utilization("psutil", "no GPU", 20, process_cpu_pct_mean=40.0, generator_cpu_pct_mean=20.0)
        step.utilization.machine_cpu_pct_mean, step.utilization.cpu_count = 60.0 + 200 * others, 2
    return step


def _stand_ins(monkeypatch: pytest.MonkeyPatch, run_step: Any) -> None:
    variants = [SimpleNamespace(model=name, precision=name.rpartition("_")[2]) for name in NAMES]
    accuracy = SimpleNamespace(save=lambda out: None, variants=variants)
    monkeypatch.setattr(server.ServerOptions, "on_free_ports", lambda *a, **k: None)
    monkeypatch.setattr(server, "TritonServer", FakeServer)
    monkeypatch.setattr(evaluator, "evaluate_accuracy", lambda *a, **k: accuracy)
    monkeypatch.setattr(harness, "run_step", run_step)
    monkeypatch.setattr(harness, "run_identity", lambda settings: (IDENTITY, None))


# --- 2. the demo's load runs record their identity ------------------------------------------------------------------


def test_the_demo_load_runs_record_their_identity_and_its_report_finds_their_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadtest.report import render

    _stand_ins(monkeypatch, lambda settings, step, out, pid=None: _step(settings.model, step.users, 20.0))
    settings = demo.DemoSettings(out=tmp_path / "out", users=4, sweep=(1, 4), duration_s=3.0)
    demo.measure(settings, NAMES, tmp_path / "heldout.npz", lambda line: None)
    for name in NAMES:
        assert LoadRun.load(settings.out / f"load-{name}.json").identity == IDENTITY  # before: "identity": null
    md_path, _ = render(settings.out)
    assert "the results record no source model" not in md_path.read_text()  # before: said of both variants


def test_a_variant_saved_after_an_interrupt_keeps_its_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def run_step(settings: Any, step: Any, out: Path, pid: int | None = None) -> LoadResult:
        calls.append(settings.model)
        if len(calls) == 3:  # the second step, INT8's turn first: cut before it measured anything
            raise KeyboardInterrupt
        return _step(settings.model, step.users, 20.0)

    _stand_ins(monkeypatch, run_step)
    settings = demo.DemoSettings(out=tmp_path / "out", users=4, sweep=(1, 4), duration_s=3.0)
    with pytest.raises(KeyboardInterrupt):
        demo.measure(settings, NAMES, tmp_path / "heldout.npz", lambda line: None)
    saved = LoadRun.load(settings.out / "load-digits_fp32.json")  # marked interrupted before its u4: by the demo
    assert saved.interrupted is not None and saved.identity == IDENTITY


# --- 3. the port range is checked first; old results are cleared once the server is up --------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something listens on (the OS's choice): a one-port range with none free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _old_results(out: Path) -> None:
    out.mkdir(parents=True)
    for name in OLD_RESULTS:
        (out / name).write_text("{}")


def test_a_port_range_without_free_ports_fails_the_demo_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy_port: int
) -> None:
    def trained(*args: Any) -> None:
        raise AssertionError("trained before the port range was checked")

    monkeypatch.setattr(demo, "prepare_model", trained)
    monkeypatch.setenv("QUANTSERVE_PORT_RANGE", f"{busy_port}-{busy_port}")
    out = tmp_path / "out"
    _old_results(out)
    with pytest.raises(QuantserveError) as refused:
        demo.run_demo(demo.DemoSettings(out=out), lambda line: None)
    expected = f"no 3 free ports on 127.0.0.1 in QUANTSERVE_PORT_RANGE={busy_port}-{busy_port} (1 port, 0 of them free)"
    assert str(refused.value) == f"{expected}: {WIDEN}"
    assert sorted(p.name for p in out.iterdir()) == sorted(OLD_RESULTS)  # the earlier run's results stay


def test_the_port_range_flag_refuses_in_one_line_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    monkeypatch.setattr(demo, "prepare_model", lambda *a: pytest.fail("trained before the port range was checked"))
    assert main(["demo", "--out", str(tmp_path / "out"), "--port-range", f"{busy_port}-{busy_port}"]) == 2
    range_text = f"--port-range {busy_port}-{busy_port}"
    line = f"quantserve: error: no 3 free ports on 127.0.0.1 in {range_text} (1 port, 0 of them free): {WIDEN}"
    assert capsys.readouterr().err.strip() == line


def test_a_server_that_does_not_start_leaves_the_earlier_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DeadServer(FakeServer):
        def __enter__(self) -> FakeServer:
            raise QuantserveError("tritonserver exited during startup")

    monkeypatch.setattr(server.ServerOptions, "on_free_ports", lambda *a, **k: None)
    monkeypatch.setattr(server, "TritonServer", DeadServer)
    out = tmp_path / "out"
    _old_results(out)
    with pytest.raises(QuantserveError, match=r"^tritonserver exited during startup$"):
        demo.measure(demo.DemoSettings(out=out), NAMES, tmp_path / "heldout.npz", lambda line: None)
    assert sorted(p.name for p in out.iterdir()) == sorted(OLD_RESULTS)  # before: deleted, none written


# --- 1. the terminal and summary.json carry the pages' caveats ------------------------------------------------------


def _busy_measure(settings: demo.DemoSettings, names: list[str], heldout: Path, say: Any) -> dict[str, Any]:
    """Both variants' runs saved as the demo saves them, on a machine others took 68 % / 56 % of (pl12's run 1)."""
    steps = {NAMES[0]: _step(NAMES[0], 16, 19.46, 0.68), NAMES[1]: _step(NAMES[1], 16, 46.50, 0.56)}
    for name, step in steps.items():
        LoadRun(name, [step], precision=name.rpartition("_")[2], identity=IDENTITY).save(settings.out)
    variants = [SimpleNamespace(model=n, accuracy=0.9824, top1_agreement=1.0) for n in NAMES]
    return {"accuracy": SimpleNamespace(variants=variants, over_budget=[]), "loads": steps}


def test_the_summary_and_the_terminal_carry_the_reports_caveats_on_the_served_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from quantserve.cli.commands.demo import print_summary

    monkeypatch.setattr(demo, "prepare_model", lambda settings, say, heartbeat: {"heldout": tmp_path / "heldout.npz"})
    monkeypatch.setattr(demo, "optimize_and_deploy", lambda settings, files, say, heartbeat: NAMES)
    monkeypatch.setattr(demo, "measure", _busy_measure)
    settings = demo.DemoSettings(out=tmp_path / "out", tune=False)
    settings.out.mkdir()
    summary = demo.run_demo(settings, lambda line: None)

    shares = zip(("68%", "56%"), NAMES, strict=True)
    caveats = [f"others took {share} of the cores during {name} @ 16 users" for share, name in shares]
    assert json.loads((settings.out / "summary.json").read_text())["int8_speedup_caveats"] == caveats
    report = (settings.out / "report.md").read_text()
    assert f"req/s at 16 users), caveat: {'; '.join(caveats)}**" in report  # the same words as report.md's verdict
    print_summary(summary, Console(width=200))  # one line each, unwrapped
    lines = capsys.readouterr().out.splitlines()
    verdict = lines.index("INT8 vs FP32: 2.39× served throughput, accuracy drop 0.00 points")
    assert lines[verdict + 1] == f"caveat: {'; '.join(caveats)}"  # before: the verdict alone


def test_the_summary_names_the_reports_own_pair_where_it_compares_other_steps(tmp_path: Path) -> None:
    from quantserve.cli.demo_caveats import served_caveats

    for name, rps in zip(NAMES, (20.0, 40.0), strict=True):
        steps = [_step(name, 4, rps), _step(name, 16, rps, 0.5)]
        LoadRun(name, steps, precision=name.rpartition("_")[2], identity=IDENTITY).save(tmp_path)
    caveats = [f"others took 50% of the cores during {name} @ 16 users" for name in NAMES]
    assert served_caveats(tmp_path, NAMES, 16) == caveats
    headline = "PASS · INT8 2.00× FP32 served (digits_int8 vs digits_fp32, 40.0 vs 20.0 req/s at 16 users)"
    assert served_caveats(tmp_path, NAMES, 4) == [f"report.md: {headline}, caveat: {'; '.join(caveats)}"]


def test_the_tune_section_and_the_terminal_carry_tune_htmls_busy_machine_and_re_measure(tmp_path: Path) -> None:
    from quantserve.cli.demo_caveats import tune_caveat_lines
    from quantserve.cli.tables import finite_json
    from quantserve.cli.tune import TuneResult, make_config
    from quantserve.cli.tune_report import render_html
    from tests.quantserve.test_tune_limits import settings, trial

    baseline = trial(make_config("fp32", 0, "powers", 0, 1), 12.1, 1630.0, 12.1, others_share=0.72)
    best = trial(make_config("int8", 256, "half", 500, 1), 40.6, 610.5, 40.6, others_share=0.6)
    result = TuneResult([baseline, best], best, baseline, 276.0, search_best=best, search_baseline=baseline)
    result.confirmed, result.confirmed_pick = True, best
    result.settings = settings(tmp_path, slo_p99_ms=1880.7, users=16, request_batch=16)
    result.deployed = {"repo": "model_repo", "name": "digits_tuned", "version": 1, "config_path": "c.pbtxt"}
    result.remeasured = {"throughput_rps": 28.1, "throughput_ratio": 0.69, "p99_ms": 1377.9, "p50_ms": 700.0}
    section = demo.tune_section(result, result.settings)

    shared = "other processes took 72% of the cores during the trials: tune again on an idle machine"
    remeasured = "re-measured: 28.1 req/s (0.69x the claim), p99 1377.9 ms (claimed 610.5): within the 1880.7 ms SLO"
    assert (section["others_share_max"], section["shared_machine"]) == (0.72, shared)
    assert section["remeasured"] == result.remeasured and section["remeasure_line"] == remeasured
    assert json.loads(json.dumps(finite_json(section)))["remeasure_line"] == remeasured  # summary.json holds it
    lines = tune_caveat_lines(section)
    assert lines == [f"tune: note: {shared}", f"tune: {remeasured}"]  # before: none of it
    html = render_html(result.to_json())
    for line in (shared, remeasured):  # tune.html's own words
        assert escape(line[:1].upper() + line[1:]) in html or escape(line) in html
    assert tune_caveat_lines({"status": "failed", "error": "x"}) == [] and tune_caveat_lines(None) == []
