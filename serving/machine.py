"""What this machine can do for INT8 serving: CPU model, instruction sets, cores, NVIDIA GPUs.

Read from `/proc/cpuinfo` and NVML (pynvml imported only when asked), for `quantserve doctor` and
for the report's verdict. The INT8 benefit stated here is an expectation from the instruction
sets, never a measurement: `quantserve optimize` measures INT8 against FP32 on this machine.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optimizer.speed import cpu_model

# /proc/cpuinfo flag -> the name people know it by
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8",
}
MACHINE_FILE = "machine.json"


@dataclass(frozen=True)
class CpuFacts:
    """The CPU as the OS reports it: model name, cores this process may use, the ISA extensions that matter."""

    model: str
    logical_cores: int
    usable_cores: int
    isa: list[str] = field(default_factory=list)

    @property
    def has_vnni(self) -> bool:
        return "AVX512-VNNI" in self.isa or "AVX-VNNI" in self.isa

    def line(self) -> str:
        """E.g. "AMD EPYC 9B14, 2 of 2 cores, AVX2 AVX-512 AVX512-VNNI"."""
        isa = " ".join(self.isa) or "no AVX2/AVX-512/VNNI/AMX"
        return f"{self.model}, {self.usable_cores} of {self.logical_cores} cores, {isa}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The `flags` of the first processor in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_facts(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> CpuFacts:
    """This machine's CPU facts (no flags where /proc/cpuinfo cannot be read)."""
    try:
        flags = cpu_flags(cpuinfo_path.read_text())
    except OSError:
        flags = set()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    isa = [name for flag, name in ISA_FLAGS.items() if flag in flags]
    return CpuFacts(cpu_model(), os.cpu_count() or 1, usable, isa)


def int8_expectation(cpu: CpuFacts) -> str:
    """A short sentence on the INT8 speedup to expect from these instruction sets (not a measurement)."""
    if "AMX-INT8" in cpu.isa:
        gain = (
            "AMX-INT8: INT8 GEMM peaked at 9.0–9.5× FP32 on a 2-vCPU Xeon (BENCHMARKS.md), a compute-bound CNN 2.9× "
            "in-process and a small encoder 1.6×; models bound by FP32 ops or per-request overhead gain far less"
        )
    elif cpu.has_vnni:
        vnni = "AVX512-VNNI" if "AVX512-VNNI" in cpu.isa else "AVX-VNNI"
        gain = f"{vnni}: INT8 Conv/MatMul typically 2–3× FP32"
    elif "AVX2" in cpu.isa:
        gain = (
            "AVX2 without VNNI: INT8 GEMM peaked at 1.85–2.01× FP32 on an AVX2-only EPYC (BENCHMARKS.md), "
            "compute-bound convolutions 1.87–2.04× in-process; small, depthwise or overhead-bound models gain less or "
            "run slower"
        )
    else:
        gain = "no AVX2, VNNI or AMX: INT8 is unlikely to beat FP32 here"
    return f"{gain} — an expectation from the CPU, not a measurement; `quantserve optimize` measures it here"


def gpus() -> list[dict[str, Any]] | str:
    """NVIDIA GPUs through NVML (name, memory, driver), or the reason there are none."""
    try:
        import pynvml
    except ImportError:
        return "no NVIDIA GPU (pynvml not installed)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound and friends: no driver, no GPU
        return f"no NVIDIA GPU ({exc})"
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            found.append({"index": index, "name": name, "memory_gb": round(memory.total / 2**30, 1), "driver": driver})
        return found or "no NVIDIA GPU (NVML sees none)"
    finally:
        pynvml.nvmlShutdown()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def write_machine_facts(folder: Path) -> Path:
    """Record this machine's CPU beside measured results (`machine.json`), so a report names where they ran."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MACHINE_FILE
    path.write_text(json.dumps(cpu_facts().to_dict(), indent=2) + "\n")
    return path
