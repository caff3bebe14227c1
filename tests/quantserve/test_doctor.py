"""`quantserve doctor`: CPU ISA and the INT8 benefit to expect, GPU, TensorRT, Docker, tritonserver and backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from quantserve.cli import main
from quantserve.cli.commands.doctor import machine_report, print_report
from serving.machine import CpuFacts, cpu_facts, cpu_flags, int8_expectation

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni amx_tile amx_int8
"""


def test_isa_flags_come_from_cpuinfo(tmp_path: Path) -> None:
    assert {"avx2", "avx512_vnni", "amx_int8"} <= cpu_flags(CPUINFO)
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    facts = cpu_facts(tmp_path / "cpuinfo")
    assert facts.isa == ["AVX2", "AVX-512", "AVX512-VNNI", "AMX-INT8"] and facts.has_vnni
    assert facts.usable_cores >= 1 and facts.logical_cores >= facts.usable_cores


@pytest.mark.parametrize(
    ("isa", "expected"),
    [
        (["AVX2", "AVX-512", "AVX512-VNNI", "AMX-INT8"], "AMX-INT8: INT8 GEMM peaked at 9.0–9.5× FP32"),
        (["AVX2", "AVX-512", "AVX512-VNNI"], "AVX512-VNNI: INT8 Conv/MatMul typically 2–3× FP32"),
        (["AVX2", "AVX-VNNI"], "AVX-VNNI: INT8 Conv/MatMul typically 2–3× FP32"),
        (["AVX2"], "AVX2 without VNNI: INT8 GEMM peaked at 1.85–2.01× FP32"),
        ([], "no AVX2, VNNI or AMX: INT8 is unlikely to beat FP32 here"),
    ],
)
def test_the_int8_expectation_follows_the_isa_and_says_it_is_not_a_measurement(isa: list[str], expected: str) -> None:
    sentence = int8_expectation(CpuFacts("cpu", 2, 2, isa))
    assert sentence.startswith(expected)
    assert "not a measurement" in sentence and "quantserve optimize" in sentence


def test_doctor_prints_every_check_at_80_columns() -> None:
    console = Console(width=80, record=True)
    print_report(machine_report(), console)
    text = console.export_text()
    for check in (
        "CPU",
        "cores",
        "ISA",
        "GPU (NVML)",
        "TensorRT",
        "ONNX Runtime",
        "Docker",
        "tritonserver",
        "backends",
    ):
        assert f"│ {check} " in text, text
    assert "INT8 here:" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_doctor_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cpu"]["model"] and isinstance(report["cpu"]["isa"], list)
    assert isinstance(report["gpu"], list | str) and "docker" in report
    triton = report["tritonserver"]
    assert triton["binary"] is None or "python" in triton["backends"]  # the wheel's server carries the Python backend


def test_the_avx2_expectation_says_what_was_measured() -> None:
    from serving.machine import CpuFacts, int8_expectation

    text = int8_expectation(CpuFacts("EPYC", 2, 2, ["AVX2"]))
    assert "1–1.5×" not in text and "1.85–2.01× FP32" in text and "gain less" in text
