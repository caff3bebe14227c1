"""What the demo's terminal and summary.json say beside its two verdicts, in the words report.md and tune.html say it
with (their own functions: one source), so the terminal cannot tell less than the pages.

Probe round 12 found the terminal saying less: "INT8 vs FP32: 2.39× served" and tune's "3.36×" on a machine where
other processes took 56–72 % of the cores, while report.md's verdict carried "others took 68%/56% of the cores" and
tune.html "others took 72%" and "Re-measured: 28.1 req/s (0.69x the claim)"; summary.json's tune section held neither.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CAVEATS_KEY = "int8_speedup_caveats"  # summary.json: report.md's caveats on the served ratio
IN_PROCESS_KEY = "int8_in_process"  # summary.json: the INT8 build's speedup over FP32 in-process, as optimize timed it
# ... its fields: the figure, its verdict, and report.md's caveats on it with the load they come from (a busy machine)
IN_PROCESS_FIELDS = ("speedup", "verdict", "holds", "threads", "busy", "others_share", "caveats")
REPORT_KEY = "report"  # summary.json: report.md's verdict word, its failures and headline


def served_caveats(out: Path, names: list[str], users: int) -> list[str]:
    """report.md's caveats on its served INT8-vs-FP32 ratio (`loadtest.served_speed`: a busy machine, other models'
    load on the server, latency spent outside it) where that ratio is the summary's (these models at `users`); where
    report.md compares other steps (the summary's were unfit: failed requests, a restart), its headline instead."""
    from loadtest.report import load_results
    from loadtest.report_verdict import verdict_headline

    verdict = load_results(out).verdict
    served = verdict.served
    if served is not None and served.users == users and [served.fp32_model, served.int8_model] == names:
        return list(served.caveats)
    return [f"report.md: {verdict_headline(verdict)}"]


# tune.json's notes the demo's terminal says as tune's does ("note: …"), in `tune_lines.outcome_lines`'s order: the
# client's share of the latency (`tune_verdict.outside_line`), an SLO that bound no run, a busy machine
TUNE_NOTES = ("outside_server", "slo_unbound", "shared_machine")


def tune_caveats(result: Any) -> dict[str, Any]:
    """The summary's tune section's share of what tune.html's headline says (`tune_lines`): its notes (TUNE_NOTES),
    the most of the cores other processes took during the trials, and the re-measure of the deployed winner against
    the claim."""
    from quantserve.cli.tune_lines import remeasure_line

    document = result.to_json()
    return {
        **{key: document[key] for key in TUNE_NOTES},
        "others_share_max": document["others_share_max"],
        "remeasured": document["remeasured"],
        "remeasure_line": remeasure_line(document) if document["remeasured"] else "",
    }


def served_caveat_line(summary: dict[str, Any]) -> str:
    """The terminal's line under the verdict: report.md's caveats on the ratio, in its words; "" where none."""
    caveats = summary.get(CAVEATS_KEY) or []
    return f"caveat: {'; '.join(caveats)}" if caveats else ""


def tune_caveat_lines(section: dict[str, Any] | None) -> list[str]:
    """The terminal's lines under tune's: tune.html's notes (TUNE_NOTES: the demo's tune once left out the one on
    latency spent outside Triton) and re-measure; none where nothing was deployed (the failure line says why) or
    there is nothing to say."""
    if not section or section.get("status") != "ok":
        return []
    lines = [f"tune: note: {section[key]}" for key in TUNE_NOTES if section.get(key)]
    return lines + ([f"tune: {section['remeasure_line']}"] if section.get("remeasure_line") else [])


def report_verdict(out: Path, int8_model: str) -> dict[str, Any]:
    """summary.json's share of report.md's verdict (`loadtest.report`, the builds the folder records): the INT8 build's
    in-process speed as optimize timed it, and the verdict's word and failures. The quick-start probe's terminal said
    "1.15× served" and nothing else where report.md said `FAIL · … · 0.93× in-process`."""
    from loadtest.report import load_results
    from loadtest.report_verdict import verdict_headline

    verdict = load_results(out).verdict
    speed = next((s for s in verdict.in_process if s.get("model") == int8_model), None)
    in_process = {key: speed.get(key) for key in IN_PROCESS_FIELDS} if speed else None
    report = {"verdict": verdict.word if verdict.judged else "NO VERDICT", "failures": list(verdict.failures)}
    return {IN_PROCESS_KEY: in_process, REPORT_KEY: {**report, "headline": verdict_headline(verdict)}}


def in_process_words(summary: dict[str, Any]) -> str:
    """The verdict line's in-process part, e.g. "0.93× in-process (slower here: served anyway, --allow-slower), " or
    "3.07× in-process (caveat: others took 50% of the cores while optimize timed it), " (report.md's caveats); ""
    where the build recorded no timing, and "in-process speedup n/a (not measured), " where its figure is null or
    NaN (strict JSON writes a NaN as null), as report.md's headline says it: it had said nothing."""
    speed = summary.get(IN_PROCESS_KEY)
    if not speed:
        return ""
    value = speed.get("speedup")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "in-process speedup n/a (not measured), "
    said_as = speed.get("verdict") or "slower"
    if said_as == "slower" and value >= 1.0:  # 1.09× read "slower here": faster, by less than the bar (session 60)
        said_as = "under --min-speedup"
    slower = f"{said_as} here: served anyway, --allow-slower"
    said = [] if speed.get("holds", True) else [slower]
    said += [f"caveat: {'; '.join(speed['caveats'])}"] if speed.get("caveats") else []
    words = f" ({'; '.join(said)})" if said else ""
    return f"{speed['speedup']:.2f}× in-process{words}, "


def report_line(summary: dict[str, Any]) -> str:
    """The terminal's line of report.md's verdict: its word and why it fails, e.g. "report: FAIL (digits_int8: INT8
    0.93× FP32 in-process, below its speed budget)"; "" for a summary written before it was recorded."""
    report = summary.get(REPORT_KEY)
    if not report:
        return ""
    if report["verdict"] == "NO VERDICT":
        return f"report: {report['headline']}"
    why = f" ({'; '.join(report['failures'])})" if report["failures"] else ""
    return f"report: {report['verdict']}{why}"
