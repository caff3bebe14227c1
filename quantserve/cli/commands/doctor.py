"""`quantserve doctor`: what this machine can do, the first thing to run when something is off.

CPU model, instruction sets (AVX2, AVX-512, VNNI, AMX) and cores with the INT8 benefit they lead
one to expect; NVIDIA GPUs via NVML; TensorRT; ONNX Runtime and its providers; Docker client and
engine; the tritonserver quantserve would start and its backends. Every check reports, none fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from quantserve.cli.tables import TEXT, Column, add_json_flag, print_json, print_rows

DOCKER_TIMEOUT_S = 5.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="what this machine can do: CPU ISA and expected INT8 benefit, GPU, TensorRT, Docker, tritonserver",
        description="Report the CPU (model, AVX2/AVX-512/VNNI/AMX, cores), NVIDIA GPUs, TensorRT, ONNX Runtime, "
        "Docker and the tritonserver found, with its backends.",
    )
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    facts = machine_report()
    if args.json:
        print_json(facts)
        return 0
    print_report(facts)
    return 0


def machine_report() -> dict[str, Any]:
    """Every fact `doctor` prints, as one JSON-ready document."""
    from serving.machine import cpu_facts, gpus, int8_expectation

    cpu = cpu_facts()
    return {
        "cpu": cpu.to_dict(),
        "int8_expectation": int8_expectation(cpu),
        "gpu": gpus(),
        "tensorrt": _package("tensorrt"),
        "onnxruntime": _onnxruntime(),
        "docker": docker_status(),
        "tritonserver": tritonserver_status(),
    }


def _package(name: str) -> str | None:
    """The installed version of an importable package, or None (without importing it)."""
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "importable (version unknown)"


def _onnxruntime() -> dict[str, Any] | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    return {"version": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}


def docker_status() -> dict[str, Any]:
    """The Docker client on PATH and whether its engine answers (`docker version`)."""
    client = shutil.which("docker")
    if client is None:
        return {"client": None, "engine": None, "note": "no docker client on PATH"}
    try:
        done = subprocess.run(
            [client, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"client": client, "engine": None, "note": f"engine did not answer ({exc})"}
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        return {"client": client, "engine": None, "note": f"engine not reachable: {reason}"}
    return {"client": client, "engine": done.stdout.strip(), "note": ""}


def tritonserver_status() -> dict[str, Any]:
    """The tritonserver `quantserve serve` would start (serving.triton_install's locator) and its backends."""
    from quantserve.errors import QuantserveError
    from serving.triton_install import locate_tritonserver

    with tempfile.TemporaryDirectory(prefix="quantserve-doctor-") as scratch:
        try:
            install = locate_tritonserver(Path(scratch))
        except QuantserveError as exc:
            return {"binary": None, "backends": [], "note": str(exc)}
        backends = sorted(p.name for p in install.backends.iterdir() if p.is_dir()) if install.backends.is_dir() else []
        source = "nvidia-pytriton wheel" if install.scratch is not None else "on PATH (NVIDIA's image)"
        return {"binary": str(install.binary), "backends": backends, "note": source}


def print_report(facts: dict[str, Any], console: Any = None) -> None:
    """Check and finding, one row each, then the INT8 expectation in one sentence."""
    from rich.console import Console

    console = console or Console()
    print_rows("quantserve doctor", [Column("check", TEXT), Column("finding", TEXT)], report_rows(facts), console)
    console.print(f"INT8 here: {facts['int8_expectation']}")


def report_rows(facts: dict[str, Any]) -> list[list[str]]:
    """The report as (check, finding) rows, in words."""
    cpu = facts["cpu"]
    isa = " ".join(cpu["isa"]) or "none of AVX2, AVX-512, VNNI, AMX"
    gpu = facts["gpu"]
    gpu_text = gpu if isinstance(gpu, str) else "; ".join(f"{g['name']} {g['memory_gb']} GB" for g in gpu)
    ort = facts["onnxruntime"]
    docker, triton = facts["docker"], facts["tritonserver"]
    return [
        ["CPU", cpu["model"]],
        ["cores", f"{cpu['usable_cores']} usable of {cpu['logical_cores']}"],
        ["ISA", isa],
        ["GPU (NVML)", gpu_text],
        ["TensorRT", facts["tensorrt"] or "not installed (the tensorrt target needs it and a GPU)"],
        ["ONNX Runtime", f"{ort['version']}: {', '.join(ort['providers'])}" if ort else "not installed"],
        ["Docker", (docker["engine"] and f"engine {docker['engine']} ({docker['client']})") or docker["note"]],
        ["tritonserver", f"{triton['binary']} ({triton['note']})" if triton["binary"] else triton["note"]],
        ["backends", ", ".join(triton["backends"]) or "–"],
    ]
