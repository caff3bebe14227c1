"""What the verdict's machine line adds beside the machine it names: the load runs recorded from another client
machine, and the builds whose in-process ratio was timed on another CPU; and machine.json read as the other results
files are (one line where it is of another shape). Apart from `loadtest.verdict` so that module stays the verdict
itself and under the size the style asks.

Measured (pl6): `report --build` joined a build's in-process 1.90× timed on an AMD EPYC with load runs whose
machine.json and identities named a 112-core Xeon 8480+, under "Machine: Intel(R) Xeon(R) Platinum 8480+, 112 cores"
and no word that the two ratios came from two machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.load_run import LoadRun
from loadtest.result_files import read_json
from quantserve.errors import QuantserveError


def recorded_machine(path: Path) -> tuple[str, int, list[str]]:
    """The CPU model, usable cores and instruction sets machine.json records; a file of another shape (cut short,
    hand-edited) is one line naming what is wrong, as the other results files are."""
    data = read_json(path)
    try:
        model, cores, isa = data["model"], data["usable_cores"], data["isa"]
        if not isinstance(model, str):
            raise ValueError(f"'model' is {model!r}, not a CPU name")
        if isinstance(cores, bool) or not isinstance(cores, int):
            raise ValueError(f"'usable_cores' is {cores!r}, not a number")
        if not isinstance(isa, list) or not all(isinstance(name, str) for name in isa):
            raise ValueError(f"'isa' is {isa!r}, not a list of instruction sets")
    except KeyError as exc:
        raise QuantserveError(f"{path}: not a quantserve machine file (no {exc} field)") from exc
    except (TypeError, ValueError) as exc:
        raise QuantserveError(f"{path}: not a quantserve machine file ({exc})") from exc
    return model, cores, isa


def other_clients(runs: list[LoadRun], cpu: str, cores: int | None) -> str:
    """`; load-a.json was load-tested from box (Xeon, 112 cores)`, for the runs whose recorded client machine is not
    the line's; "" where none recorded another."""
    others: dict[str, list[str]] = {}
    for run in runs:
        ident = run.identity
        if ident is None or not ident.client():
            continue
        if (ident.client_cpu or cpu) != cpu or (cores is not None and (ident.client_cores or cores) != cores):
            others.setdefault(str(ident.client()), []).append(run.file or run.model)
    if not others:
        return ""
    lines = [f"{', '.join(files)} {'was' if len(files) == 1 else 'were'} load-tested from {client}"
             for client, files in others.items()]  # fmt: skip
    return f"; {'; '.join(lines)}"


def timed_elsewhere(manifests: list[dict[str, Any]], cpu: str, whose: str) -> str:
    """`; mlp's in-process 1.90× was timed on AMD EPYC (its build's manifest), the served runs on Xeon: not one
    machine`, for each build whose recorded speed was timed on another CPU than `cpu`, the line's (`whose` figures
    those are); "" where every build's was timed on it."""
    clauses = []
    for manifest in manifests:
        speed = (manifest.get("verification") or {}).get("speed") or {}
        timed_on = str(speed.get("cpu") or "")
        if timed_on and timed_on != cpu:
            ratio = f"{manifest.get('name', '?')}'s in-process {float(speed.get('speedup', 0.0)):.2f}×"
            clauses.append(f"{ratio} was timed on {timed_on} (its build's manifest), {whose} on {cpu}: not one machine")
    return "".join(f"; {clause}" for clause in clauses)
