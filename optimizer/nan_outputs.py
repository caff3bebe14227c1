"""An FP32 model that answers NaN on most rows is refused before any work, naming where the NaN starts.

A fastText language identifier exported with torch.onnx writes `logsigmoid` as Log(Sigmoid): −inf, and −inf × 0 in
the next MatMul is NaN. Its FP32 graph answered NaN in 79 220 of 95 040 values, on 451 of 540 rows (torch eager is
finite). optimize went on: the NaN rows were left out of every figure (zeroed for the kind, it read `embedding`),
INT8 was refused for "14854 values NaN or infinite where FP32 is finite" with advice to try another --method, and
`--precision fp32` blamed dynamic quantization (session 52). Nothing INT8 can do mends a reference that is NaN:
the model or its export is at fault, and the line says so, with the first node whose output holds a NaN and the
inputs of it that hold an infinity.

Only NaN on over half the rows checked is refused: an infinity may be an answer (a masked class's log-probability is
−inf), and a NaN on a few rows is left out of the figures with a note, as before (`optimizer.drift.finite_in_fp32`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.drift_checks import DriftReport

MOST_ROWS = 0.5  # NaN on more than this share of the rows checked: the FP32 reference cannot judge anything


def nan_rows(values: Any) -> np.ndarray:
    """Which rows (axis 0) of a float output hold a NaN; none for other outputs."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating) or array.ndim == 0 or not len(array):
        return np.zeros(0, dtype=bool)
    return np.isnan(array.reshape(len(array), -1)).any(axis=1)


def nan_refusal(
    model_path: Path, names: Sequence[str], answers: Sequence[Any], feeds: dict[str, np.ndarray], source: str
) -> str:
    """The line refusing a model whose FP32 `answers` to `feeds` hold NaN on most rows of an output, else ""."""
    for name, values in zip(names, answers, strict=True):
        rows = nan_rows(values)
        if not rows.size or rows.mean() <= MOST_ROWS:
            continue
        count = int(np.isnan(np.asarray(values)).sum())
        start = first_nan_node(model_path, {k: v[int(np.argmax(rows)) :][:1] for k, v in feeds.items()})
        return (
            f"{source}: the FP32 model answers NaN in output '{name}' on {int(rows.sum())} of {len(rows)} rows "
            f"checked ({count} of {np.asarray(values).size} values){start}: the model or its export is at fault, "
            "and no precision can be judged against it; fix the graph (an export writing log(sigmoid(x)) as "
            "Log(Sigmoid) gives −inf, and −inf × 0 is NaN) and optimize again"
        )
    return ""


def first_nan_node(model_path: Path, row: dict[str, np.ndarray], test: Any = np.isnan) -> str:
    """E.g. ", first at node '/MatMul' (MatMul), whose input '/Log_output_0' holds -inf": the first node in the
    graph's order whose output holds a NaN (or what `test` finds) on `row`, every node's output run as an output
    (`run_with_tensors`); "" where the graph cannot be run so (a tensor ONNX Runtime will not return)."""
    from optimizer.quant_exclusions import run_with_tensors

    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
        tensors = [t for node in graph.node for t in node.output if t]
        values = next(iter(run_with_tensors(model_path, [row], tensors)))
    except Exception:  # the node is a courtesy: the refusal stands without it
        return ""
    for node in graph.node:
        if any(_has(values.get(t), test) for t in node.output):
            infinite = [t for t in node.input if _has(values.get(t), np.isinf)]
            held = "".join(
                f", whose input '{t}' holds {'-inf' if np.any(np.asarray(values[t]) < 0) else 'inf'}"
                for t in infinite[:1]
            )
            return f", first at node '{node.name}' ({node.op_type}){held}"
    return ""


def nonfinite_origins(
    report: DriftReport,
    model_path: Path,
    reference: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    feeds: Mapping[str, np.ndarray],
) -> DriftReport:
    """`report` with each "values NaN or infinite where FP32 is finite" violation saying where the compared model
    first makes one (`first_nan_node`, on the first row FP32 answers finite there) and what cures it. A pitch
    model's INT8 answered 1097 NaN on silence, FP32 none there: a Sigmoid's outputs rounded to 0 (step 1/255) under
    its decoder's sum(c*y)/sum(y), and the refusal named no node (session 58)."""
    violations = []
    for violation in report.violations:
        name = violation.output
        if violation.metric == "nonfinite_values" and not violation.where and name in got and name in reference:
            where = _nonfinite_where(model_path, np.asarray(reference[name]), np.asarray(got[name]), feeds)
            if where:
                report.outputs.get(name, {})["nonfinite_at"] = where
            said = "; ".join(words for words in (where, fp32_nonfinite_words(name, reference[name])) if words)
            if said:
                violation = replace(violation, where=said)
        violations.append(violation)
    report.violations = violations
    return report


def fp32_nonfinite_words(name: str, reference: Any) -> str:
    """E.g. "FP32 itself answers NaN at 526 values of output 'cents' (left out of every figure)", where FP32's own
    answers hold NaN (or infinities); "" where they are finite. A refusal for INT8's NaN where FP32 is finite said
    nothing of FP32's own, left out of its figures: the pitch model's 0/0 on silence read as INT8's alone (session
    58), and the build's note saying it is not printed with a refusal."""
    values = np.asarray(reference)
    if not np.issubdtype(values.dtype, np.floating) or not (count := int(np.count_nonzero(~np.isfinite(values)))):
        return ""
    what = "NaN" if count == int(np.count_nonzero(np.isnan(values))) else "NaN or infinite"
    plural = "s" if count != 1 else ""
    return f"FP32 itself answers {what} at {count} value{plural} of output '{name}' (left out of every figure)"


def _nonfinite_where(model_path: Path, ref: np.ndarray, new: np.ndarray, feeds: Mapping[str, np.ndarray]) -> str:
    if not ref.ndim or not len(new) or any(np.ndim(v) == 0 or len(v) != len(new) for v in feeds.values()):
        return ""  # rows that are no sample's (an --unbatched build's joined outputs): no row to run alone
    with np.errstate(invalid="ignore"):
        rows = (~np.isfinite(new) & np.isfinite(ref)).reshape(len(new), -1).any(axis=1)
    if not rows.any():
        return ""
    row = int(np.argmax(rows))
    start = first_nan_node(model_path, {k: np.asarray(v)[row : row + 1] for k, v in feeds.items()}, _nonfinite)
    if not start:
        return ""
    return (
        f"{start.removeprefix(', ')} on held-out row {row}: an activation INT8 rounds to 0 under a division or a log "
        "(FP32 is finite there); an epsilon in the model (x / (y + 1e-6)) or that path kept in FP32 cures it"
    )


def _nonfinite(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values)


def nan_alike_difference(want: np.ndarray, got: np.ndarray) -> float:
    """The largest absolute difference of two numeric outputs, a NaN in both (or the same infinity) alike, 0; a NaN
    or infinity in one only, inf. A NaN compared as unequal to NaN skipped onnxslim's fusion of a pitch model whose
    decoder divides 0/0 on silence ("differs … by up to 0"), and `max` over a NaN read a miss as 0 (session 58)."""
    a, b = np.asarray(want, np.float64), np.asarray(got, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(b - a)
    alike = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(alike, 0.0, np.where(np.isnan(diff), np.inf, diff))
    return float(diff.max(initial=0.0))


def _has(value: Any, test: Any) -> bool:
    array = np.asarray(value) if value is not None else None
    return array is not None and np.issubdtype(array.dtype, np.floating) and bool(test(array).any())
