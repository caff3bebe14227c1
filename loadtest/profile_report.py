"""profile.md and one self-contained profile.html, rendered from the profile.json `quantserve profile` wrote.

Only formats numbers already in the JSON (`optimizer.profile_compare.BuildProfile`); measures nothing.
The row builders are shared with the command's terminal tables, so all three show the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

from loadtest import svg_plots
from loadtest.report import STYLE
from optimizer.profile_compare import BuildProfile
from quantserve.errors import QuantserveError

PROFILE_FILE = "profile.json"
# Why a kernel time at or above its run time claims no overhead (`_overhead_words`)
SEPARATE_MEDIANS = (
    "the two are separate medians, apart on a busy machine, so ORT's own overhead cannot be read from them"
)
CHART_OP_TYPES = len(svg_plots.PALETTE) - 1  # the rest of the op types share one "other" segment


def load_profile(folder: Path | str) -> BuildProfile:
    path = Path(folder) / PROFILE_FILE
    if not path.is_file():
        raise QuantserveError(f"{folder}: no {PROFILE_FILE}; run 'quantserve profile BUILD --out {folder}' first")
    try:
        return BuildProfile.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise QuantserveError(f"{path}: not a quantserve profile ({exc})") from exc


def render(folder: Path | str, top: int = 10) -> tuple[Path, Path]:
    """Write profile.md and profile.html into `folder` from its profile.json; returns their paths."""
    result = load_profile(folder)
    md_path, html_path = Path(folder) / "profile.md", Path(folder) / "profile.html"
    md_path.write_text(render_markdown(result, top))
    html_path.write_text(render_html(result, top))
    return md_path, html_path


def labels(result: BuildProfile) -> tuple[str, str]:
    """Column names for the reference and the model: FP32 and the model's precision."""
    if result.precision == "fp32":
        return "reference", "model"
    return "FP32", result.precision.upper()


def _ms(value: float) -> str:
    return _fixed(value, 3) if value else "–"  # 0.0: that model ran no kernel for it


def _x(value: float | None) -> str:
    return "–" if value is None else _fixed(value, 2, "×")


def _fixed(value: float, places: int, unit: str = "") -> str:
    """A figure, or "n/a" for a NaN (a timing not measured, written as null in profile.json)."""
    return f"{value:.{places}f}{unit}" if math.isfinite(value) else "n/a"


def summary_lines(result: BuildProfile) -> list[str]:
    ref, mod = labels(result)
    return [
        f"build {result.build}: {ref} {_fixed(result.reference.run_ms, 3)} ms per run, {mod} "
        f"{_fixed(result.model.run_ms, 3)} ms "
        f"({mod} speedup {_x(result.run_speedup)})",
        f"CPU: {result.cpu}; {result.reference.threads} intra-op thread(s); {result.repeats} timed passes "
        f"over {result.batches} batch(es) after a warm-up",
        f"inputs: {result.inputs}",
        f"kernel time per run: {ref} {_fixed(result.reference.kernel_ms, 3)} ms, {mod} "
        f"{_fixed(result.model.kernel_ms, 3)} ms {_overhead_words(result)}",
        *([f"timed: {result.timing}"] if result.timing else []),
        *result.notes,  # a busy machine, an FP32 build: what the figures cannot say
    ]


def _overhead_words(result: BuildProfile) -> str:
    """What the run and kernel times say of ORT's overhead: the rest of a run, unless a kernel time is not below its
    run time; the two are separate medians, and on a busy machine INT8 read 3.772 ms per run and 4.287 ms of kernels
    (session 61), a negative rest."""
    ref, mod = labels(result)
    over = [(label, p) for label, p in ((ref, result.reference), (mod, result.model)) if p.kernel_ms >= p.run_ms]
    if not over:
        return "(the rest of a run is ORT's own overhead)"
    if len(over) == 1:
        label, profile = over[0]
        said = f"{label}'s kernel time is not below its run time, {_fixed(profile.run_ms, 3)} ms"
    else:
        runs = " and ".join(_fixed(profile.run_ms, 3) for _, profile in over)
        said = f"{ref}'s and {mod}'s kernel times are not below their run times, {runs} ms"
    return f"({said}: {SEPARATE_MEDIANS})"


def op_type_rows(result: BuildProfile) -> tuple[list[str], list[list[str]]]:
    """Per ONNX op type: both models' ms per run, speedup, share of each model's kernel time; op type last."""
    ref, mod = labels(result)
    header = [f"{ref} ms", f"{mod} ms", "speedup", f"{ref} %", f"{mod} %", "op type"]
    rows = [
        [
            _ms(r.reference_ms),
            _ms(r.model_ms),
            _x(r.speedup),
            _fixed(r.reference_share * 100, 1),
            _fixed(r.model_share * 100, 1),
            _runs_as(r.op_type, r.runs_as),
        ]
        for r in result.op_types
    ]
    return header, rows


def node_rows(result: BuildProfile, top: int | None = None) -> tuple[list[str], list[list[str]]]:
    """The `top` most expensive nodes (all when None), name and op type last so a long name folds."""
    ref, mod = labels(result)
    header = [f"{ref} ms", f"{mod} ms", "speedup", "node (op type)"]
    rows = [
        [
            _ms(r.reference_ms),
            _ms(r.model_ms),
            _x(r.speedup),
            _node_label(r.node, _runs_as(r.op_type, r.runs_as), r.inserted),
        ]
        for r in result.nodes[:top]
    ]
    return header, rows


def _runs_as(op_type: str, kernels: Sequence[str]) -> str:
    """The ONNX op type, and the kernels ORT fused it into: "MatMulInteger → MatMulIntegerToFloat"."""
    return f"{op_type} → {', '.join(kernels)}" if kernels else op_type


def _node_label(node: str, op_type: str, inserted: bool) -> str:
    return f"{node} ({op_type}, added by ORT)" if inserted else f"{node} ({op_type})"


def _not_run_lines(result: BuildProfile) -> list[str]:
    ref, mod = labels(result)
    lines = []
    for label, profile in ((ref, result.reference), (mod, result.model)):
        if profile.not_run:
            lines.append(f"{label}: ONNX nodes that ran no kernel of their own (fused or folded): ")
            lines[-1] += ", ".join(profile.not_run)
    return lines


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(result: BuildProfile, top: int = 10) -> str:
    ref, mod = labels(result)
    parts = [f"# Profile: {ref} vs {mod}", "", *(f"- {line}" for line in summary_lines(result)), ""]
    parts += ["## Time per op type (ms per run)", "", _md_table(*op_type_rows(result)), ""]
    parts += [f"## Top {top} nodes (ms per run)", "", _md_table(*node_rows(result, top)), ""]
    parts += [*(f"- {line}" for line in _not_run_lines(result)), ""]
    return "\n".join(parts)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in reversed(header))
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in reversed(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def op_type_chart(result: BuildProfile) -> str:
    """Stacked bars, one per model: kernel ms per run split by op type (the costliest, then the rest)."""
    shown = [r.op_type for r in result.op_types[:CHART_OP_TYPES]]
    rest = result.op_types[CHART_OP_TYPES:]
    segments = shown + (["other"] if rest else [])
    rows = []
    for label, side in zip(labels(result), ("reference_ms", "model_ms"), strict=True):
        values = [getattr(r, side) for r in result.op_types[:CHART_OP_TYPES]]
        rows.append((label, values + ([sum(getattr(r, side) for r in rest)] if rest else [])))
    return svg_plots.stacked_bars("Kernel time per run by op type", rows, segments, "ms")


def render_html(result: BuildProfile, top: int = 10) -> str:
    ref, mod = labels(result)
    body = [f"<h1>Profile: {escape(ref)} vs {escape(mod)}</h1>", "<ul>"]
    body += [f"<li>{escape(line)}</li>" for line in summary_lines(result)] + ["</ul>"]
    body += ["<h2>Time per op type (ms per run)</h2>", op_type_chart(result), _html_table(*op_type_rows(result))]
    body += [f"<h2>Top {top} nodes (ms per run)</h2>", _html_table(*node_rows(result, top))]
    body += [f"<details><summary>All {len(result.nodes)} nodes</summary>", _html_table(*node_rows(result))]
    body += ["</details>", *(f"<p>{escape(line)}</p>" for line in _not_run_lines(result))]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>quantserve profile</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
