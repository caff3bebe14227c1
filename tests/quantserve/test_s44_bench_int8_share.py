"""bench's compute figure counts only the multiply-adds its INT8 build runs in INT8 against the INT8 peak: magika's
INT8 build kept its Conv and last MatMul FP32 (9.2 % of its multiply-adds INT8) and all 0.367 G a sample were
counted there, "25.4/s × 0.367 G = 9.307 G/s = 13.6 % of the INT8 peak" (session 44)."""

from __future__ import annotations

import pytest

from quantserve.cli.bench import compute_for
from quantserve.cli.bench_peak import PeakRecord, compute_record
from quantserve.cli.bench_results import ModelBench, RowResult

PEAK = PeakRecord("MatMulInteger", 68_400_000_000, 1.0, 2)


def test_only_the_int8_multiply_adds_count_against_the_int8_peak() -> None:
    record = compute_record({"Conv": 300_000_000, "MatMul": 67_000_000}, {"row 5": 25.4}, PEAK, 0.092)
    assert record["int8_macs_per_sample"] == pytest.approx(0.092 * 367_000_000)
    assert record["fraction_of_int8_peak"]["row 5"] == pytest.approx(25.4 * 0.092 * 367_000_000 / 68.4e9)
    assert "the INT8 build runs 9.2 % of them in INT8 (33.76 M), the rest FP32" in record["arithmetic"][0]
    assert record["arithmetic"][2].startswith("row 5: 25.4/s × 33.76 M in INT8 = 0.858 G/s = 1.3 % of the INT8 peak")


def test_an_all_int8_build_reads_as_before() -> None:
    record = compute_record({"MatMul": 1280}, {"row 5": 646.2}, PEAK, 1.0)
    assert record["arithmetic"][0] == "multiply-adds a sample: 1.28 k (MatMul 1.28 k)"
    assert record["arithmetic"][2].startswith("row 5: 646.2/s × 1.28 k = 0.83 M/s = ")


def test_bench_takes_the_share_its_int8_build_recorded() -> None:
    rows = {n: RowResult(n, "", "") for n in range(1, 6)}
    for n in (1, 2, 4):
        rows[n].not_measured = "not here"
    bench = ModelBench("m", "", 1, 1, rows, {"int8": {"int8_mac_share": 0.5}}, macs={"MatMul": 1000})
    for n in (3, 5):
        rows[n].figures["saturation_samples_per_s"] = type("Spread", (), {"median": 10.0})()
    record = compute_for(bench, PEAK)
    assert record is not None and record["int8_mac_share"] == 0.5 and record["int8_macs_per_sample"] == 500
