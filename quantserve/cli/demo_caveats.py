"""What the demo's terminal and summary.json say beside its two verdicts, in the words report.md and tune.html say it
with (their own functions: one source), so the terminal cannot tell less than the pages.

Probe round 12 found the terminal saying less: "INT8 vs FP32: 2.39× served" and tune's "3.36×" on a machine where
other processes took 56–72 % of the cores, while report.md's verdict carried "others took 68%/56% of the cores" and
tune.html "others took 72%" and "Re-measured: 28.1 req/s (0.69x the claim)"; summary.json's tune section held neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CAVEATS_KEY = "int8_speedup_caveats"  # summary.json: report.md's caveats on the served ratio


def served_caveats(out: Path, names: list[str], users: int) -> list[str]:
    """report.md's caveats on its served INT8-vs-FP32 ratio (`loadtest.served_speed`: a busy machine, other models'
    load on the server, latency spent outside it) where that ratio is the summary's (these models at `users`); where
    report.md compares other steps (the summary's were unfit: failed requests, a restart), its headline instead."""
    from loadtest.report import load_results, verdict_headline

    verdict = load_results(out).verdict
    served = verdict.served
    if served is not None and served.users == users and [served.fp32_model, served.int8_model] == names:
        return list(served.caveats)
    return [f"report.md: {verdict_headline(verdict)}"]


def tune_caveats(result: Any) -> dict[str, Any]:
    """The summary's tune section's share of what tune.html's headline says (`tune_lines`): the most of the cores
    other processes took during the trials, and the re-measure of the deployed winner against the claim."""
    from quantserve.cli.tune_lines import remeasure_line

    document = result.to_json()
    return {
        "others_share_max": document["others_share_max"],
        "shared_machine": document["shared_machine"],
        "remeasured": document["remeasured"],
        "remeasure_line": remeasure_line(document) if document["remeasured"] else "",
    }


def served_caveat_line(summary: dict[str, Any]) -> str:
    """The terminal's line under the verdict: report.md's caveats on the ratio, in its words; "" where none."""
    caveats = summary.get(CAVEATS_KEY) or []
    return f"caveat: {'; '.join(caveats)}" if caveats else ""


def tune_caveat_lines(section: dict[str, Any] | None) -> list[str]:
    """The terminal's lines under tune's: tune.html's busy-machine note and re-measure; none where nothing was
    deployed (the failure line says why) or there is nothing to say."""
    if not section or section.get("status") != "ok":
        return []
    lines = [f"tune: note: {section['shared_machine']}"] if section.get("shared_machine") else []
    return lines + ([f"tune: {section['remeasure_line']}"] if section.get("remeasure_line") else [])
