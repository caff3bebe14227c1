"""`quantserve bench` stopped by Ctrl-C or SIGTERM: bench.json written with the rows measured, and what is missing.

bench.json was written only once a model's last repeat ended, so a cut mid-model lost every row it had measured: a
`--quick` run cut in its served rows (3 or 4 of its 5 rows measured) left no bench.json at all, only "quantserve:
interrupted". `run_bench` now keeps the model in progress here as its rows fill (`BenchProgress`); on the interrupt
the document takes it, each row measured in fewer repeats than asked is named (a row never measured is marked not
measured, so no ratio is taken from it), the document is saved atomically, marked `interrupted`, and
`BenchInterrupted` (a KeyboardInterrupt: a caller that does not look for it stops as on any Ctrl-C) says where.
The row in progress at the cut is left out whole: a fraction of its window is not the figure its row stands for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantserve.cli.bench_results import ModelBench, save

NEVER_MEASURED = "interrupted before it was measured"


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during bench, after bench.json was saved: `document` is what it holds, `line` what to say."""

    def __init__(self, line: str, document: dict[str, Any], path: Path) -> None:
        super().__init__(line)
        self.line, self.document, self.path = line, document, path


@dataclass
class BenchProgress:
    """How far `bench` got: the stage it is in, and the model whose rows are being measured (its `ModelBench`, the
    rows filling in place as each repeat measures them)."""

    started: float
    stage: str = "the machine's INT8 peak"
    current: ModelBench | None = None


def interrupted(
    document: dict[str, Any], progress: BenchProgress, models: tuple[str, ...], repeats: int, out: Path
) -> BenchInterrupted:
    """Save `document` (the models finished) with the model in progress and what the cut left unmeasured, marked
    interrupted; the exception to raise."""
    current = progress.current
    if current is not None and current.model not in document["models"]:
        for row in current.rows.values():
            if not row.not_measured and not row.figures["p99_ms"].runs:
                row.not_measured = NEVER_MEASURED
        document["models"][current.model] = current.to_dict()
    missing = missing_rows(document, models, repeats)
    seconds = round(time.monotonic() - progress.started, 1)
    document["interrupted"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "after_s": seconds,
        "during": progress.stage,
        "missing": missing,
    }
    document["seconds"] = seconds
    path = save(document, out)
    measured = sum(len(model_rows(document, name)) for name in document["models"])
    line = f"interrupted during {progress.stage}, {seconds:.0f} s in: the {measured} row(s) measured are in {path}"
    return BenchInterrupted(line + (f"; missing: {'; '.join(missing)}" if missing else ""), document, path)


def model_rows(document: dict[str, Any], name: str) -> list[int]:
    """The rows of a saved model measured at least once."""
    rows = document["models"].get(name, {}).get("rows", [])
    return [row["row"] for row in rows if row["p99_ms"]["runs"]]


def missing_rows(document: dict[str, Any], models: tuple[str, ...], repeats: int) -> list[str]:
    """Per model, what the cut left unmeasured: a model not reached, rows never measured, rows short of repeats
    (rows recorded as not measured for their own reason, e.g. no PyTorch form, are not the cut's)."""
    missing = []
    for name in models:
        model = document["models"].get(name)
        if model is None:
            missing.append(f"{name}: every row")
            continue
        never = [r["row"] for r in model["rows"] if r.get("not_measured") == NEVER_MEASURED]
        short = [r for r in model["rows"] if not r.get("not_measured") and 0 < len(r["p99_ms"]["runs"]) < repeats]
        parts = [f"row(s) {', '.join(map(str, never))}"] if never else []
        parts += [f"row {r['row']} in {repeats - len(r['p99_ms']['runs'])} of {repeats} repeats" for r in short]
        if parts:
            missing.append(f"{name}: {', '.join(parts)}")
    return missing
