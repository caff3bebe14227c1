"""The report's verdict: its one-sentence headline, and the section report.md and report.html open with."""

from __future__ import annotations

from html import escape

from loadtest.report_lines import drift_table, evidence_lines, html_table, md_table
from loadtest.verdict import NOT_LOADED, NOT_SHOWN, THIN, Verdict, timed_speedup


def verdict_headline(verdict: Verdict) -> str:
    """One sentence: pass/fail, INT8 vs FP32 served and in-process."""
    if not verdict.judged:  # why, where something was loaded but not compared (different models, unknown precision)
        why = verdict.served_missing if verdict.served_missing != NOT_LOADED else ""
        return f"No verdict: {why or 'load-test an FP32 and an INT8 variant, or evaluate them, to compare.'}"
    parts = [verdict.word]
    served = verdict.served
    if served is not None and not served.comparable:
        parts.append(
            f"served INT8 vs FP32 not comparable: {served.idle_side()} ({served.int8_model} vs {served.fp32_model}, "
            f"{served.int8_rps:.1f} vs {served.fp32_rps:.1f} req/s)"
        )
    elif served is not None:
        caveat = f", caveat: {'; '.join(served.caveats)}" if served.caveats else ""
        parts.append(
            f"INT8 {served.speedup:.2f}× FP32 served ({served.int8_model} vs {served.fp32_model}, "
            f"{served.int8_rps:.1f} vs {served.fp32_rps:.1f} req/s at {served.users} users){caveat}"
        )
    else:
        parts.append(f"served INT8 vs FP32 not measured ({verdict.served_missing})")
    for speed in verdict.in_process:
        caveat = f", caveat: {'; '.join(speed['caveats'])}" if speed.get("caveats") else ""  # as the served ratio's
        shown = f"{speed['speedup']:.2f}× in-process" if timed_speedup(speed) else "in-process speedup n/a"
        parts.append(f"{shown} ({speed['model']}, {speed['threads']} threads){caveat}")
    if verdict.drift:
        held, thin = sum(r.holds for r in verdict.drift), sum(bool(r.evidence) for r in verdict.drift)
        rows = f" on the rows given, {thin} on too few rows to show it" if thin else ""
        parts.append(f"drift: {held} of {len(verdict.drift)} budgeted metrics within budget{rows}")
    return " · ".join(parts)


def verdict_markdown(verdict: Verdict) -> list[str]:
    """The verdict section, first in report.md."""
    parts = ["## Verdict", "", f"**{verdict_headline(verdict)}**", ""]
    parts += [f"- {line}" for line in verdict.failures]
    parts += [f"- {kind}: {line}" for kind, line in evidence_lines(verdict)]
    parts += [f"- Note: {line}" for line in verdict.notes]
    if verdict.drift:
        parts += ["", md_table(*drift_table(verdict))]
    return [*parts, "", f"Machine: {verdict.machine}.", ""]


def verdict_html(verdict: Verdict) -> str:
    """The verdict box the HTML report opens with (visible without scrolling)."""
    css = "verdict" if verdict.passed or not verdict.judged else "verdict failed"
    css += " thin" if verdict.judged and verdict.word in (NOT_SHOWN, THIN) else ""
    word, _, rest = verdict_headline(verdict).partition(" · ")
    mark = {"PASS": "ok", "FAIL": "fail", NOT_SHOWN: "thin", THIN: "thin"}.get(word)
    headline = f'<span class="{mark}">{escape(word)}</span> · {escape(rest)}' if mark else escape(word)
    parts = [f'<section id="verdict" class="{css}">', f'<p class="headline">{headline}</p>']
    parts += [f'<p class="fail">{escape(line)}</p>' for line in verdict.failures]
    parts += [f'<p class="thin">{kind}: {escape(line)}</p>' for kind, line in evidence_lines(verdict)]
    parts += [f"<p>Note: {escape(line)}</p>" for line in verdict.notes]
    if verdict.drift:
        parts.append(html_table(*drift_table(verdict)))
    parts.append(f'<p class="machine">Machine: {escape(verdict.machine)}</p></section>')
    return "\n".join(parts)
