"""The report's machine line says where a build's in-process ratio was timed on another CPU than the served runs ran
on: a prober (pl6) joined `--build`'s 1.90× timed on an AMD EPYC with load runs whose machine.json named a 112-core
Xeon 8480+, under "Machine: …Xeon…" and no word that the two ratios came from two machines (`machine_line` looked at
the build's CPU only where machine.json was absent).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from serving.machine import MACHINE_FILE

XEON = "Intel(R) Xeon(R) Platinum 8480+"
MACHINE = {"model": XEON, "logical_cores": 112, "usable_cores": 112, "isa": ["AVX2", "AMX"]}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "r"
    for model, rps in (("mlp_fp32", 627.5), ("mlp_int8", 650.7)):
        latency = LatencySummary(int(rps * 10), 5.0, 5.0, 6.0, 7.0, 8.0, 2.0, 9.0)
        step = LoadResult(model, "127.0.0.1:8001", "closed", 4, 10.0, int(rps * 10), 0, rps, rps, latency)
        identity = RunIdentity("2026-12-01T16:50:00Z", ["1"], "sha256:mlp", "req.npz", "sha256:req")
        identity.client_host, identity.client_cpu, identity.client_cores = "box", XEON, 112
        LoadRun(model, [step], precision=model.rpartition("_")[2], identity=identity).save(folder)
    (folder / MACHINE_FILE).write_text(json.dumps(MACHINE))
    return folder


def _build(tmp_path: Path, name: str, cpu: str, speedup: float = 1.9) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    speed = {"speedup": speedup, "threads": 2, "cpu": cpu, "holds": True}
    (folder / "manifest.json").write_text(json.dumps({"name": name, "verification": {"speed": speed}}))
    return folder


def _machine(folder: Path, builds: list[Path]) -> str:
    text = render(folder, builds)[0].read_text()
    return re.search(r"^Machine: (.*)$", text, re.MULTILINE).group(1)  # type: ignore[union-attr]


def test_a_build_timed_on_another_cpu_than_the_served_runs_is_named_on_the_machine_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert _machine(folder, [_build(tmp_path, "mlp", "AMD EPYC 7B13")]) == (
        f"{XEON}, 112 cores (AVX2 AMX); mlp's in-process 1.90× was timed on AMD EPYC 7B13 (its build's manifest), "
        f"the served runs on {XEON}: not one machine."
    )
    assert _machine(folder, [_build(tmp_path, "same", XEON)]) == f"{XEON}, 112 cores (AVX2 AMX)."  # one machine


def test_without_a_machine_file_a_second_build_timed_on_another_cpu_is_named(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / MACHINE_FILE).unlink()
    builds = [_build(tmp_path, "mlp", XEON), _build(tmp_path, "mlp2", "AMD EPYC 7B13", 1.5)]
    assert _machine(folder, builds) == (
        f"{XEON}, timed on 2 threads (from the build's manifest); mlp2's in-process 1.50× was timed on AMD EPYC 7B13 "
        f"(its build's manifest), mlp's on {XEON}: not one machine."
    )
