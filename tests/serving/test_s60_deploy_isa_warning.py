"""Deploy warns where an INT8 build with 8-bit weights, verified on a CPU whose u8 × s8 kernels do not saturate (VNNI),
is served on this machine, whose kernels do (AVX2 without VNNI): its drift may exceed what verification measured
(session 60: an LSTM's dynamic INT8 build takes 8-bit weights on VNNI CPUs). A warning, not a refusal; nothing for 7-bit
weights, FP32 builds, builds served elsewhere, or builds older than the record. This machine's flags are faked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import serving.deploy
from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy

VNNI_CPU = {"model": "AMD EPYC 9B14", "flags": ["avx2", "avx512_vnni"], "u8s8_saturates": False}
AVX2_CPU = {"model": "AMD EPYC 7B12", "flags": ["avx2"], "u8s8_saturates": True}
AVX2_HERE = frozenset({"sse2", "avx", "avx2", "fma"})
VNNI_HERE = AVX2_HERE | {"avx512f", "avx512_vnni"}


def int8_build(build: Path, **calibrate: Any) -> Path:
    """`build` as an INT8 build whose calibrate stage record holds `calibrate` (no keys: one older than session 60)."""
    manifest = Manifest.load(build)
    manifest.precision = "int8"
    manifest.stages.append({"stage": "calibrate", "scheme": "dynamic", **calibrate})
    manifest.save(build)
    return build


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch) -> Any:
    def on(flags: frozenset[str]) -> None:
        monkeypatch.setattr(serving.deploy, "cpu_flags", lambda: flags)
        monkeypatch.setattr(serving.deploy, "cpu_model", lambda: "AMD EPYC 7B12")

    return on


def test_eight_bit_weights_verified_on_vnni_warn_when_served_without_vnni(
    dense_build: Path, tmp_path: Path, here: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    here(AVX2_HERE)
    int8_build(dense_build, reduce_range=False, build_cpu=VNNI_CPU, weights_saturate_without_vnni=True)
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense_int8"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "8-bit weights" in line]
    assert len(warned) == 1, warned
    line = warned[0]
    assert line.startswith(f"warning: {dense_build}: INT8 build with 8-bit weights verified on AMD EPYC 9B14 "), line
    assert "(AVX2 AVX512-VNNI)" in line and "this machine's AMD EPYC 7B12 (AVX2, no VNNI)" in line
    assert "drift may exceed what verification measured" in line
    assert "`quantserve evaluate --models dense_int8 --reference FP32_MODEL` here" in line
    assert "rebuild here with `quantserve optimize`" in line and "7-bit weights" in line
    assert (tmp_path / "repo" / "dense_int8" / "1").is_dir()  # deployed all the same


@pytest.mark.parametrize(
    ("here_flags", "record"),
    [
        (VNNI_HERE, {"reduce_range": False, "build_cpu": VNNI_CPU, "weights_saturate_without_vnni": True}),
        (AVX2_HERE, {"reduce_range": True, "build_cpu": VNNI_CPU, "weights_saturate_without_vnni": False}),
        (AVX2_HERE, {"reduce_range": False, "build_cpu": AVX2_CPU, "weights_saturate_without_vnni": True}),
        (AVX2_HERE, {"reduce_range": False}),  # older manifest: no CPU recorded
        (AVX2_HERE, {"build_cpu": "EPYC", "weights_saturate_without_vnni": True}),  # not a record this code wrote
    ],
    ids=["served-on-vnni", "seven-bit", "verified-without-vnni", "no-isa-recorded", "malformed"],
)
def test_no_warning_where_served_drift_matches_what_was_verified(
    dense_build: Path, tmp_path: Path, here: Any, here_flags: frozenset[str], record: dict[str, Any]
) -> None:
    here(here_flags)
    result = deploy(int8_build(dense_build, **record), tmp_path / "repo", "dense_int8")
    assert result.isa_warning == ""


def test_an_fp32_build_is_not_warned_about(dense_build: Path, tmp_path: Path, here: Any) -> None:
    here(AVX2_HERE)
    int8_build(dense_build, reduce_range=False, build_cpu=VNNI_CPU, weights_saturate_without_vnni=True)
    manifest = Manifest.load(dense_build)
    manifest.precision = "fp32"
    manifest.save(dense_build)
    assert deploy(dense_build, tmp_path / "repo", "dense_fp32").isa_warning == ""
