"""What a drift refusal rests on, put so a user can weigh it: the INT8 search's closest candidate as the verification
record `optimize` prints before the line (per output, and the --metric row: FP32 beside INT8), and the words after the
line that name each missed check by the flag that sets it, count the samples a worst-sample check misses, and say
where the user's own --metric held.

A low-light enhancer (session 55) was refused by the search with "mean PSNR to FP32 40.66 < 45 (and 1 more: worst
sample 21.44) … deploy fp32" and nothing on stdout: its --metric, PSNR to the true images, had held (15.50 → 15.46 dB,
a 0.24 % drop within 1 %), and seeing that took --keep-failing --allow-slower and six minutes more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optimizer.drift_budget import BUDGET_FLAGS, DriftBudget
from optimizer.drift_checks import CHECKS, DriftReport, check_words
from optimizer.few_samples import few_samples_refusal_words
from optimizer.image_scale import scale_words
from optimizer.token_values import TOKENS
from optimizer.user_metric import NONFINITE_SCORE
from quantserve.metrics import beyond

METRIC_FIELD = "max_metric_drop"  # the budget a --metric's relative drop is judged against
MEASURES_SHOWN = 2  # what one missed flag measured, said for this many outputs, the rest counted


def candidate_verification(drift: DriftReport, budget: DriftBudget, data: str, samples: int) -> dict[str, Any]:
    """A candidate's held-out drift as the verification record a shipped build carries (`print_verification`
    reads it): `data` says whose figures they are, `samples` over how many rows."""
    return {"data": data, "budget": budget.to_dict(), "samples": samples, **drift.to_dict()}


def miss_words(verification: Mapping[str, Any]) -> str:
    """E.g. "missed: --min-psnr-mean 45, --min-psnr-worst 40 (11 of 128 samples under 40 dB); for scale: FP32 itself,
    given its inputs rounded to 8 bits, reads … (`optimizer.image_scale`); your --metric m:psnr
    held: 15.50 → 15.46, a drop of 0.24 %, within --max-metric-drop 0.01 (1 %)"; "" where nothing missed."""
    violations = list(verification.get("violations") or [])
    if not violations:
        return ""
    outputs = verification.get("outputs") or {}
    missed = _grouped([_flag_words(violation, outputs) for violation in violations])
    said = [f"missed: {', '.join(missed)}" if missed else "", scale_words(verification)]
    said.append(metric_held_words(verification.get("metric")))
    said.append(few_samples_refusal_words(verification))  # a miss on figures no row count weighs, on few samples
    return "; ".join(words for words in said if words)


def _grouped(flags: list[str]) -> list[str]:
    """Each missed flag once, with at most MEASURES_SHOWN of what it measured and a count of the rest: nanodet's
    three score heads (session 67) were told "--min-box-agreement 0.95 (…)" six times in one refusal line."""
    measures: dict[str, list[str]] = {}
    for flag in filter(None, flags):
        base, _, measure = flag.partition(" (")
        said = measures.setdefault(base, [])
        if measure and measure[:-1] not in said:
            said.append(measure[:-1])
    words = []
    for base, said in measures.items():
        shown = "; ".join(said[:MEASURES_SHOWN]) + (
            f"; and {len(said) - MEASURES_SHOWN} more" if len(said) > MEASURES_SHOWN else ""
        )
        words.append(f"{base} ({shown})" if said else base)
    return words


def _flag_words(violation: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
    """The flag that sets a missed check and its value ("--min-psnr-worst 40"), with the samples under a worst
    sample's PSNR floor; "" for a check no flag loosens (NaN where FP32 is finite, a channel FP32 never turns on)."""
    if violation["metric"] == NONFINITE_SCORE:  # no score on INT8's outputs (NaN, or it raised): no drop to allow
        return ""
    field = METRIC_FIELD if violation.get("scope") == "metric" else CHECKS.get(violation["metric"], ("", ""))[1]
    if field not in BUDGET_FLAGS:
        return ""
    record = outputs.get(violation["output"]) or {}
    under = samples_under(record, float(violation["budget"])) if violation["metric"] == "psnr_worst" else ""
    named = f"output '{violation['output']}': " if under and len(outputs) > 1 else ""
    under = under or _measures(violation)
    return f"{BUDGET_FLAGS[field][0]} {violation['budget']:g}" + (f" ({named}{under})" if under else "")


def _measures(violation: Mapping[str, Any]) -> str:
    """What --min-box-agreement measured where no boxes are read (a probability map's or a raw head's score channels,
    `optimizer.anchor_scores`): "clear positives of output 'probs' agreed: 0.8605". PickerXL's phase picker (a
    per-sample probability trace, session 56) was told "missed: --min-box-agreement 0.95" and had no boxes."""
    output, value = violation["output"], float(violation["value"])
    if violation["metric"] == "anchor_decision_agreement":
        return f"clear positives of output '{output}' agreed: {value:.4g}"
    if violation["metric"] == "anchor_far_agreement":
        return f"output '{output}', 1 - positions turned on from nothing or off to nothing per sample: {value:.4g}"
    return ""


def samples_under(record: Mapping[str, Any], floor: float) -> str:
    """How many of an image output's samples read a PSNR to FP32 under `floor`, from its lowest ones kept
    (`optimizer.image_outputs.PSNR_LOWEST_KEPT`): "11 of 128 samples under 40 dB", "at least 128 of 512 …" where
    every one kept is under it; "" where the record keeps none."""
    lowest, total = record.get("psnr_lowest"), record.get("psnr_samples")
    if not lowest or not total:
        return ""
    under = sum(1 for value in lowest if beyond(float(value), floor, True))
    at_least = "at least " if under == len(lowest) < int(total) else ""
    return f"{at_least}{under} of {total} sample{'s' * (int(total) != 1)} under {floor:g} dB"


def metric_held_words(metric: Mapping[str, Any] | None) -> str:
    """Where the user's --metric held its budget, its FP32 and INT8 scores and the drop: "your --metric m:f held:
    15.50 → 15.46, a drop of 0.24 %, within --max-metric-drop 0.01 (1 %)"; "" where none was given or it missed (its
    miss is a violation, named with the others)."""
    if not metric or metric.get("relative_drop") is None:  # not scored (`MetricComparison.scored`): it held nothing
        return ""
    drop, limit = float(metric["relative_drop"]), float(metric["max_relative_drop"])
    if not math.isfinite(drop) or beyond(drop, limit, False):
        return ""
    change = f"a drop of {drop * 100:.2g} %" if drop > 0 else "no drop"
    scores = side_by_side(float(metric["fp32"]), float(metric["int8"]))
    flag = BUDGET_FLAGS[METRIC_FIELD][0]
    return f"your --metric {metric['spec']} held: {scores}, {change}, within {flag} {limit:g} ({limit * 100:g} %)"


def side_by_side(fp32: float, int8: float) -> str:
    """Both scores to the same decimals, 4 significant digits of the larger, more where two that differ would read
    alike or the difference would round away (up to 6): "15.50 → 15.46", "0.8734 → 0.8702", "15.458 → 15.460" (the
    probe's 8-bit run had read "15.46 → 15.46"), "1.0000 → 0.9994" (nagisa's had read "1.000 → 0.999")."""
    largest = max(abs(fp32), abs(int8))
    if not math.isfinite(largest):
        return f"{fp32:.4g} → {int8:.4g}"
    decimals = min(6, max(0, 3 - math.floor(math.log10(largest)))) if largest > 0 else 0
    if fp32 != int8:  # the difference to its first digit: 1.0 and 0.9994 had read "1.000 → 0.999", a drop of 0.001
        decimals = max(decimals, min(6, -math.floor(math.log10(abs(fp32 - int8)))))
    while decimals < 6 and fp32 != int8 and f"{fp32:.{decimals}f}" == f"{int8:.{decimals}f}":
        decimals += 1
    return f"{fp32:.{decimals}f} → {int8:.{decimals}f}"


def check_figure(drift: DriftReport, violation: Mapping[str, Any]) -> float | None:
    """A drift report's figure on the check `violation` (a `Violation.to_dict`) failed: its output's metric, or the
    --metric's relative drop (its INT8 score, 31.5 dB, stood beside "relative drop, budget 0.01": probe 65C); None
    where the report does not read that check."""
    if violation.get("scope") == "metric":  # its relative drop, the figure the budget names (not the INT8 score)
        drop = (drift.user_metric or {}).get("relative_drop")
        return None if drop is None else float(drop)
    value = (drift.outputs.get(str(violation["output"])) or {}).get(str(violation["metric"]))
    return float(value) if isinstance(value, int | float) else None


def figure_rows(
    violation: Mapping[str, Any], tried: list[tuple[str, float, DriftReport, DriftReport | None]]
) -> list[dict[str, Any]]:
    """`failing_check_figures`' rows: per candidate (its name, speed, drift on the search's rows and, where judged
    there, on every held-out row) its figure on the check `violation` failed."""
    rows = []
    for name, speedup, drift, every in tried:
        row = {
            "scheme": name,
            "value": check_figure(drift, violation),
            "holds": drift.holds,
            "speedup": round(speedup, 3),
        }
        if every is not None:
            row.update(value_on_all_rows=check_figure(every, violation), holds_on_all_rows=every.holds)
        rows.append(row)
    return rows


def failing_check_figures(
    violation: Mapping[str, Any], tried: list[dict[str, Any]], undone: Mapping[str, str], rows: tuple[int, int]
) -> tuple[str, dict[str, Any]]:
    """The words and record that name every candidate a refused search tried and its figure on the check that failed
    (`violation`), and what it left undone and why: "candidates tried (output 'h' worst cosine, budget 0.97, on the
    search's 512 held-out rows): static_qdq 0.9872 (0.9643 on all 3590), dynamic 0.9994; left undone: static_qdq_7bit
    (…)". `tried`: per candidate its "scheme" (with the compute nodes it kept FP32 said), "value" on the search's rows
    and, where judged on every held-out row, "value_on_all_rows" and "holds_on_all_rows". `rows`: the search's
    held-out rows and all of them. pythainlp's thai2rom decoder was refused at 0.9643 with no word of what was tried.
    """
    searched, every = rows
    words = check_words(str(violation["metric"]), str(violation.get("unit", TOKENS)))
    check = f"{violation.get('scope', 'output')} '{violation['output']}' {words}, budget {float(violation['budget']):g}"
    on = f", on the search's {searched} held-out rows" if searched < every else ""
    check_of = CHECKS.get(str(violation["metric"])) if violation.get("scope", "output") == "output" else None
    named = ", ".join(dict.fromkeys(_tried_figure(row, every, violation, check_of) for row in tried))
    left = "; ".join(f"{scheme} ({why})" for scheme, why in undone.items())
    said = f"candidates tried ({check}{on}): {named or 'none'}" + (f"; left undone: {left}" if left else "")
    record = {**{k: violation[k] for k in ("output", "metric", "budget", "scope") if k in violation}}
    return said, {**record, "searched_rows": searched, "rows": every, "figures": tried, "left_undone": dict(undone)}


def _tried_figure(
    row: Mapping[str, Any], every: int, violation: Mapping[str, Any], check: tuple[str, str, bool] | None
) -> str:
    """A candidate's figure on the failing check, said to have missed elsewhere where it held this one and yet
    missed the budget: gear's static_qdq_matmul_only read "0.9933" against a budget of 0.99, as if it held, where it
    missed a per-class agreement (0.7778, session 67). A candidate tried twice with one figure is said once."""
    value = row.get("value")
    said = f"{row['scheme']} {'not read' if value is None else f'{float(value):.4g}'}"
    if row.get("value_on_all_rows") is not None:
        said += f" ({float(row['value_on_all_rows']):.4g} on all {every})"
    held_here = (
        check is not None and value is not None and not beyond(float(value), float(violation["budget"]), check[2])
    )
    if held_here and row.get("holds") is False:
        said += " (held this, missed another check)"
    return said
