"""`bench.json` rendered as the Markdown tables of BENCHMARKS.md's side-by-side section.

    python -m quantserve.cli.bench_markdown reports/bench/bench.json

Rendered from the JSON only (nothing is measured or computed here beyond formatting).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any


def num(value: float | None, digits: int = 1) -> str:
    """A figure, or "–" where there is none (None in bench.json; NaN in a document not yet saved)."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}".replace(",", " ")


def spread(figure: dict[str, Any], digits: int = 1) -> str:
    return f"{num(figure['median'], digits)} ({num(figure['min'], digits)}–{num(figure['max'], digits)})"


def model_section(name: str, model: dict[str, Any]) -> list[str]:
    lines = [f"### {name}: {model['description']}", ""]
    lines.append(
        f"{model['request_batch']} sample(s) a request. In-process saturation: one caller's batches of "
        f"{model['saturation_batch']} back to back (the largest batch the tuned server may form), on the "
        "intra-op threads of one served instance. Median (min–max) of the repeats."
    )
    header = "| # | runner | samples/s at saturation | samples/s at fixed concurrency | p50 ms | p99 ms |"
    lines += ["", header, "|---|---|---|---|---|---|"]
    note = model.get("int8_budget_note")
    for row in model["rows"]:
        concurrent = spread(row["concurrent_samples_per_s"]) + (" ‡" if row.get("concurrent_doubt") else "")
        cells = [spread(row["saturation_samples_per_s"]), concurrent]
        cells += [spread(row["p50_ms"], 2), spread(row["p99_ms"], 2)]
        if row.get("not_measured"):
            cells = [f"not measured: {row['not_measured']}", "", "", ""]
        label = f"{row['label']} †" if note and row["row"] in (3, 5) else row["label"]
        lines.append(f"| {row['row']} | {label} | " + " | ".join(cells) + " |")
    short = [
        f"‡ row {row['row']}'s samples/s at fixed concurrency: **{row['concurrent_doubt']}**."
        for row in model["rows"]
        if row.get("concurrent_doubt")
    ]
    if note:
        lines += ["", f"† {note}."]
    if short:
        lines += ["", *short]
    lines += ["", "| ratio | value (min–max of repeats) | target | what |", "|---|---|---|---|"]
    for key, r in model["ratios"].items():
        target = "" if r["target"] is None else f"≥ {r['target']:g}: {'met' if r['met'] else '**not met**'}"
        # a ratio not taken (a row not measured) has no value or spread: "–", not "–× (–––)"
        value = "–" if r["value"] is None else f"{num(r['value'], 2)}× ({num(r['min'], 2)}–{num(r['max'], 2)})"
        absent = f"; not taken: {r['not_measured']}" if r.get("not_measured") else ""
        absent += f"; **{r['doubt']}**" if r.get("doubt") else ""
        lines.append(f"| {key} | {value} | {target} | {r['meaning']} ({r['of']}){absent} |")
    lines += ["", *(f"- row {row['row']}: {row['how']}" for row in model["rows"])]
    lines += [f"- {text}" for text in (model.get("source") or {}).get("notes", [])]
    if model.get("load_average_by_repeat"):
        lines.append(f"- load average after each repeat: {model['load_average_by_repeat']}")
    lines.append(f"- row 5's configuration: {model['tune'].get('source', '')}" + tune_note(model["tune"]))
    for text in (model.get("compute") or {}).get("arithmetic", []):
        lines.append(f"- {text}")
    return [*lines, ""]


def tune_note(tune: dict[str, Any]) -> str:
    if "trials" not in tune:
        return ""
    best = tune["best"]["config"]
    return (
        f", SLO p99 ≤ {tune['slo_p99_ms']:g} ms, {tune['trials']} trials in {tune['seconds']:g} s, best "
        f"max batch {best['max_batch']}, queue delay {best['max_queue_delay_us']} µs, {best['instances']} instance(s)"
    )


def peak_line(peak: dict[str, Any]) -> str:
    if not peak:
        return ""
    parts = []
    for kind in ("int8", "fp32"):
        record = peak[kind]
        runs = len(record.get("runs_macs_per_s", [])) or 1
        parts.append(f"{record['what']}: {num(record['macs_per_s'] / 1e9)} G multiply-adds/s (best of {runs})")
    ratio = peak["int8"]["macs_per_s"] / peak["fp32"]["macs_per_s"]
    return f"GEMM peaks on {peak['int8']['threads']} threads — " + "; ".join(parts) + f"; INT8/FP32 {ratio:.2f}×."


def render(document: dict[str, Any]) -> str:
    machine = document["machine"]
    settings = document["settings"]
    lines = [
        f"Machine: {machine['cpu_line']}; load average (1, 5, 15 min) "
        f"{machine['load_average_start']} at the start, {machine['load_average_end']} at the end; "
        f"{document.get('seconds', 0):g} s in all. Re-measure: `{settings['command']}`.",
        "",
        peak_line(document.get("peak", {})),
        "",
    ]
    for name, model in document["models"].items():
        lines += model_section(name, model)
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/bench/bench.json")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
