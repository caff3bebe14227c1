"""The CPU as `/proc/cpuinfo` states it, read in one place: its text (`optimizer.speed` takes the model name
from it) and its instruction-set flags.

The INT8 search reads the flags to decide whether 7-bit weights are worth a candidate: an x86 CPU without
VNNI runs ONNX Runtime's u8 × s8 kernels with AVX2's `vpmaddubsw`, which adds two u8 × s8 products in a
16-bit lane and saturates there (255 · 127 · 2 > 32767); VNNI's `vpdpbusd` (AVX512-VNNI, AVX-VNNI, and AMX
CPUs, which have it too) accumulates in 32 bits. Measured on fer's emotion CNN on an AVX2-only EPYC: static
Q/DQ top-1 agreement with FP32 0.81 with 8-bit weights, 0.9425 with 7-bit (`reduce_range`). ARM's kernels
widen to 16 bits per product and accumulate in 32 (no saturation); its cpuinfo has no `flags` line.

A build's drift is verified on the CPU that builds it, so an INT8 build records that CPU's flags among these
(`build_cpu_record`, in the INT8 stage record) and whether its weights are 8-bit u8 × s8 (`saturating_weights`): deploy
warns where such a build, verified where the kernels do not saturate, is served where they do.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # u8 × s8 dot products accumulated in 32 bits
INT8_FLAGS = frozenset({"avx2", *VNNI_FLAGS})  # the flags `u8s8_saturates` reads
# The INT8 stage record's keys: the CPU the build was verified on ({"model", "flags", "u8s8_saturates"}), and whether
# its weights are 8-bit u8 × s8, which saturate on a CPU without VNNI (absent: a build older than session 60)
BUILD_CPU, SATURATING_WEIGHTS = "build_cpu", "weights_saturate_without_vnni"


def read_cpuinfo(path: Path = CPUINFO) -> str:
    """The text of /proc/cpuinfo ("" where it cannot be read: another OS, a sandbox)."""
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The `flags` of the first processor (empty where there is no such line: not x86, or unreadable)."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def u8s8_saturates(flags: Collection[str]) -> bool:
    """Whether ONNX Runtime's u8 × s8 INT8 kernels saturate on a CPU with these flags: AVX2 without VNNI."""
    return "avx2" in flags and not VNNI_FLAGS & set(flags)


def build_cpu_record(model: str, flags: Collection[str]) -> dict[str, object]:
    """The CPU an INT8 build is verified on, as its stage record keeps it: model name, its INT8 flags, saturation."""
    return {"model": model, "flags": sorted(INT8_FLAGS & set(flags)), "u8s8_saturates": u8s8_saturates(flags)}


def saturating_weights(record: Mapping[str, object]) -> bool:
    """Whether an INT8 stage record's weights are 8-bit s8 (not `reduce_range`'s 7 bits), whose products with u8
    activations saturate on an x86 CPU without VNNI."""
    return not record.get("reduce_range") and record.get("weight_type", "QInt8") == "QInt8"
