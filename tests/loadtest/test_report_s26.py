"""The report pairs INT8 with every FP32 run it compares with, reads machine.json as it reads the other results files,
and says whose machine its "Machine:" line is where the load runs recorded another.

A prober (pl4) found: beside load-mlp_fp32 and load-mlp_int8 (one model, one data set), an accuracy.json of another
model (img against the reference img) made img the only FP32 partner: "No verdict: mlp_int8 and img were load-tested
on different data", where without accuracy.json the same folder read "PASS · INT8 1.04× FP32 served"; a machine.json
cut short, `[1,2]` or without `usable_cores` ended the report in a traceback, rc 1; and "Machine: AMD EPYC, 2 cores"
stood beside a run load-tested from a 112-core Xeon.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.errors import QuantserveError
from serving.machine import MACHINE_FILE, CpuFacts

MACHINE = {"model": "AMD EPYC", "logical_cores": 2, "usable_cores": 2, "isa": ["AVX2"]}
VM = {"client_host": "vm", "client_cpu": "AMD EPYC", "client_cores": 2}


def _save(folder: Path, model: str, rps: float, source: str, data: str, **client: object) -> None:
    latency = LatencySummary(int(rps * 10), 5.0, 5.0, 6.0, 7.0, 8.0, 2.0, 9.0)
    step = LoadResult(model, "127.0.0.1:8001", "closed", 4, 10.0, int(rps * 10), 0, rps, rps, latency)
    identity = RunIdentity("2026-12-01T16:50:00Z", ["1"], source, f"{data}.npz", f"sha256:{data}")
    for name, value in {**VM, **client}.items():
        setattr(identity, name, value)
    precision = "int8" if "int8" in model else "fp32"
    LoadRun(model, [step], precision=precision, identity=identity).save(folder)


def _folder(tmp_path: Path, machine: object = MACHINE, **fp32_client: object) -> Path:
    folder = tmp_path / "r"
    _save(folder, "mlp_fp32", 627.5, "sha256:mlp", "req", **fp32_client)
    _save(folder, "mlp_int8", 650.7, "sha256:mlp", "req")
    (folder / MACHINE_FILE).write_text(json.dumps(machine))
    return folder


def _accuracy(folder: Path, reference: str, variants: list[str]) -> None:
    drift = {"logits": {"kind": "classification", "top1_agreement": 1.0}}
    scored = [VariantAccuracy(m, 64, 1.0, drift=drift, precision="int8" if "int8" in m else "fp32") for m in variants]
    AccuracyReport(reference, "heldout.npz", "logits", False, None, scored).save(folder)


def _verdict(folder: Path) -> tuple[str, str]:
    section = render(folder)[0].read_text().split("## Load")[0]
    return re.search(r"\*\*(.+)\*\*", section).group(1), section  # type: ignore[union-attr]


PASS = "PASS · INT8 1.04× FP32 served (mlp_int8 vs mlp_fp32, 650.7 vs 627.5 req/s at 4 users)"


def test_an_accuracy_file_of_another_model_keeps_the_speed_pair_and_says_so(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    _save(folder, "img", 90.0, "sha256:img", "img")
    _accuracy(folder, "img", ["img"])
    headline, section = _verdict(folder)
    assert headline == PASS
    assert (
        "- Note: accuracy.json scores img against the reference img, not mlp_int8: the served speed of mlp_int8 is "
        "judged without its accuracy (evaluate it against mlp_fp32 into this folder)"
    ) in section
    assert "different data" not in section
    _accuracy(folder, "mlp_fp32", ["mlp_fp32", "mlp_int8"])  # it names the pair: its drift joins, no note
    headline, section = _verdict(folder)
    assert headline == f"{PASS} · drift: 1 of 1 budgeted metrics within budget"
    assert "accuracy.json scores" not in section


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (json.dumps(MACHINE)[:20], "not a readable results file (Expecting ',' delimiter: line 1 column 21 "
         "(char 20))"),
        ("[1,2]", "not a quantserve machine file (list indices must be integers or slices, not str)"),
        ('{"model": "AMD EPYC"}', "not a quantserve machine file (no 'usable_cores' field)"),
        (json.dumps({**MACHINE, "usable_cores": "2"}), "not a quantserve machine file ('usable_cores' is '2', not a "
         "number)"),
        (json.dumps({**MACHINE, "isa": "AVX2"}), "not a quantserve machine file ('isa' is 'AVX2', not a list of "
         "instruction sets)"),
    ],
)  # fmt: skip
def test_a_machine_file_cut_short_or_of_another_shape_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    folder = _folder(tmp_path)
    (folder / MACHINE_FILE).write_text(text)
    with pytest.raises(QuantserveError) as caught:
        render(folder)
    assert str(caught.value) == f"{folder / MACHINE_FILE}: {said}"
    assert not (folder / "report.md").exists()


def test_the_machine_line_names_the_load_runs_of_another_client_machine(tmp_path: Path) -> None:
    _, section = _verdict(_folder(tmp_path))
    assert "Machine: AMD EPYC, 2 cores (AVX2).\n" in section
    other = {"client_host": "gpu-box-7", "client_cpu": "Intel Xeon Platinum 8480+", "client_cores": 112}
    headline, section = _verdict(_folder(tmp_path, **other))
    assert headline.startswith("No verdict: mlp_int8 and mlp_fp32 were load-tested from different client machines")
    assert (
        "Machine: AMD EPYC, 2 cores (AVX2), the client's as the last loadtest or evaluate recorded it in machine.json; "
        "load-mlp_fp32.json was load-tested from gpu-box-7 (Intel Xeon Platinum 8480+, 112 cores).\n"
    ) in section


def test_without_a_machine_file_the_rendering_machine_is_named_beside_the_load_runs_of_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("loadtest.verdict.cpu_facts", lambda: CpuFacts("AMD EPYC", 2, 2, ["AVX2"]))
    folder = _folder(tmp_path, client_host="gpu-box-7", client_cpu="Intel Xeon Platinum 8480+", client_cores=112)
    (folder / MACHINE_FILE).unlink()
    assert (
        "Machine: AMD EPYC, 2 cores (the machine this report was rendered on); load-mlp_fp32.json was load-tested "
        "from gpu-box-7 (Intel Xeon Platinum 8480+, 112 cores).\n"
    ) in _verdict(folder)[1]
