"""FP32's own sensitivity, as the scale an image output's PSNR miss is judged by: the FP32 model run once more on the
held-out inputs each rounded to 8 bits (256 levels over that input's own range), its answers read against its own
answers on the inputs as given, with the same PSNR figures INT8 is judged by (`optimizer.image_outputs`).

A low-light enhancer (Zero-DCE++, session 55) was refused at mean PSNR to FP32 40.66 < 45, worst sample 21.44 < 40,
while INT8 cost 0.036 dB by its task's metric: FP32 itself, fed its inputs rounded to 8 bits (as its package feeds
them), read 40.47 mean / 20.76 worst against its own answers. A model that amplifies tiny input differences misses
any fixed PSNR budget; the refusal now says how much the model moves under 8-bit inputs, and still refuses.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.image_outputs import image_metrics
from quantserve.data import TensorData

LEVELS = 256  # 8 bits: what a picture's pixels are stored in
FP32_SCALE = "fp32_input_rounding"  # the verification record's key for the figures
PSNR_CHECKS = {"psnr_mean": "--min-psnr-mean", "psnr_worst": "--min-psnr-worst"}  # in the order the words give them


def rounded_to_8_bits(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each float input rounded to LEVELS levels over its own min..max across all rows; integer and bool inputs,
    and a float one of one value (or none finite), as they are."""
    rounded = {}
    for name, values in arrays.items():
        rounded[name] = values
        if not np.issubdtype(values.dtype, np.floating) or not values.size:
            continue
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if high <= low or eight_bit_already(finite, low, high):
            continue
        step = (high - low) / (LEVELS - 1)
        moved = (low + np.round((values.astype(np.float64) - low) / step) * step).astype(values.dtype)
        rounded[name] = values if np.array_equal(moved, values, equal_nan=True) else moved
    return rounded


def eight_bit_already(finite: np.ndarray, low: float, high: float) -> bool:
    """Whole numbers over at most LEVELS levels (a picture's 0-255 pixels as floats): rounding them to 8 bits is
    rounding them to themselves. An upscaler fed PNG pixels read "FP32 itself, given its inputs rounded to 8 bits,
    reads 100.00 dB" (PSNR's cap: nothing moved) as if a sensitivity had been measured (probe 65C)."""
    return high - low <= LEVELS - 1 and bool(np.all(finite == np.round(finite)))


def missed_image_outputs(verification: Mapping[str, Any]) -> list[str]:
    """The image outputs that missed a PSNR check, in the order of their violations."""
    outputs = verification.get("outputs") or {}
    missed = [
        v["output"]
        for v in verification.get("violations") or []
        if v.get("metric") in PSNR_CHECKS and (outputs.get(v["output"]) or {}).get("kind") == "image"
    ]
    return list(dict.fromkeys(missed))


def with_fp32_scale(
    verification: dict[str, Any],
    fp32: Path,
    data: TensorData,
    batch_size: int,
    answers: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """`verification` with FP32's own PSNR under 8-bit inputs for each image output that missed a PSNR check (one
    FP32 pass over the rounded inputs; `answers`, FP32's on the inputs as given, are run too where not passed);
    as it was where none missed one."""
    from optimizer.transformer import run_model

    names = missed_image_outputs(verification)
    if not names:
        return verification
    started = time.perf_counter()
    rounded = rounded_to_8_bits(data.arrays)
    changed = sorted(name for name in rounded if rounded[name] is not data.arrays[name])
    figures: dict[str, Any] = {"levels": LEVELS, "inputs_rounded": changed, "outputs": {}}
    if changed:
        answers = answers if answers is not None else run_model(fp32, data, batch_size)
        moved = run_model(fp32, dataclasses.replace(data, arrays=rounded), batch_size)
        for name in names:
            metrics = image_metrics(np.asarray(answers[name]), np.asarray(moved[name]))
            figures["outputs"][name] = {key: metrics[key] for key in ("psnr_mean", "psnr_worst", "psnr_range")}
    figures["seconds"] = round(time.perf_counter() - started, 3)
    return {**verification, FP32_SCALE: figures}


def scale_words(verification: Mapping[str, Any]) -> str:
    """For each image output whose PSNR miss FP32's own 8-bit sensitivity was read for, "for scale: FP32 itself,
    given its inputs rounded to 8 bits, reads 40.47 dB mean / 20.76 dB worst against its own answers; INT8's drift
    is within that (a budget of --min-psnr-mean 40 --min-psnr-worst 20 would ship it; check your --metric)", or
    that INT8 moves it more; "" where none was read."""
    scale = verification.get(FP32_SCALE) or {}
    figures, outputs = scale.get("outputs") or {}, verification.get("outputs") or {}
    if scale.get("inputs_rounded") == []:  # read, and no input moved
        return "FP32's own sensitivity to 8-bit input rounding not read: its inputs are whole 8-bit levels already"
    violations = list(verification.get("violations") or [])
    words = []
    for name, fp32 in figures.items():
        if not all(math.isfinite(float(fp32[metric])) for metric in PSNR_CHECKS):
            continue  # no scale to give (FP32 answered NaN on rounded inputs)
        missed = [v["metric"] for v in violations if v["output"] == name and v.get("metric") in PSNR_CHECKS]
        named = f"output '{name}': " if len(outputs) > 1 else ""
        reads = f"{fp32['psnr_mean']:.2f} dB mean / {fp32['psnr_worst']:.2f} dB worst against its own answers"
        said = f"for scale: {named}FP32 itself, given its inputs rounded to 8 bits, reads {reads}"
        others = any(v["output"] != name or v.get("metric") not in PSNR_CHECKS for v in violations)
        words.append(f"{said}; {_verdict(missed, outputs[name], fp32, others, bool(verification.get('metric')))}")
    return "; ".join(words)


def _verdict(
    missed: list[str],
    int8: Mapping[str, Any],
    fp32: Mapping[str, Any],
    others: bool,
    metric_given: bool,
) -> str:
    """Whether INT8's missed PSNR figures lie within FP32's own under 8-bit inputs (each at least FP32's, rounded
    down to a whole dB: the budget suggested), and what such a budget would do: ship it, where nothing `others`
    (another output, another check) missed too."""
    floors = {metric: math.floor(float(fp32[metric])) for metric in PSNR_CHECKS if metric in missed}
    if not all(float(int8[metric]) >= floor for metric, floor in floors.items()):
        reads = " / ".join(f"{float(int8[metric]):.2f}" for metric in PSNR_CHECKS)
        return f"INT8 ({reads} dB) moves the output more than 8-bit input rounding does"
    budget = " ".join(f"{PSNR_CHECKS[metric]} {floor}" for metric, floor in floors.items())
    effect = "would hold these checks" if others else "would ship it"
    metric = "" if metric_given else "; check your --metric"
    return f"INT8's drift is within that (a budget of {budget} {effect}{metric})"
