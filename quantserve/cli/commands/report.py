"""`quantserve report reports/X`: render report.md and one self-contained report.html from the JSON results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render Markdown and self-contained HTML from a results folder",
        description="Render report.md and report.html (inline SVG plots, no external files) from load-*.json "
        "and accuracy.json in RESULTS. Exits 1 when the verdict is FAIL (the files are written either way), so a "
        "script can gate a rollout on it; 0 on PASS or when nothing was judged. A load test that did not finish "
        "(killed before writing load-*.json) is reported from the raw records it left, marked INCOMPLETE and never "
        "judged. Two or more runs of one precision of one model (FP32 naive and tuned, versions 1 and 2) are shown "
        "side by side: an A/B table of their figures and ratios to the run load-tested first, judging nothing.",
    )
    parser.add_argument("results", type=Path, help="folder written by loadtest/evaluate")
    parser.add_argument(
        "--build",
        type=Path,
        action="append",
        default=[],
        help="build folder whose manifest's in-process INT8 vs FP32 speed joins the verdict; repeatable "
        "(default: those RESULTS/builds.json records, as the demo writes it)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from loadtest.report import load_results, render
    from loadtest.report_verdict import verdict_headline

    md_path, html_path = render(args.results, args.build)
    print(f"wrote {html_path} and {md_path}")
    inputs = load_results(args.results, args.build)
    for step in inputs.unfinished:
        print(f"INCOMPLETE: {step.summary()}")
    for line in inputs.ab.console_lines():  # runs of one precision side by side; the verdict stays the last line
        print(line)
    print(verdict_headline(inputs.verdict))
    return 1 if inputs.verdict.judged and not inputs.verdict.passed else 0
