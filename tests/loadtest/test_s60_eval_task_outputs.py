"""evaluate judges an output its build was told is independent tasks (`optimize --output-kind NAME=multitask`) as
optimize did: deploy records the kind, evaluate reads it back, picks the output for its headline and judges the
worst task's decisions, the label sets beside them (session 60: ADMET-AI's 31 assays)."""

from __future__ import annotations

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from loadtest.served_graph import told_kinds
from loadtest.variant_scores import headline_output
from optimizer.drift_budget import DriftBudget
from optimizer.graph_words import GraphWords
from serving.kinds_parameter import kinds_parameter


def _assays() -> tuple[np.ndarray, np.ndarray]:
    """20 tasks' scores, and a build flipping 3 decisions of each on rows of its own (label sets 0.94, each 0.997)."""
    probs = np.random.default_rng(60).uniform(0.05, 0.95, (1000, 20)).astype(np.float32)
    for task in range(20):  # flipped from clear of 0.5 (within 0.02 a flip is a near-tie, left out)
        rows = probs[task * 3 : task * 3 + 3, task]
        rows[np.abs(rows - 0.5) < 0.05] = 0.3
    got = probs.copy()
    for task in range(20):
        got[task * 3 : task * 3 + 3, task] = 1.0 - probs[task * 3 : task * 3 + 3, task]
    return probs, got


def test_evaluate_judges_a_multitask_output_as_its_build_was_told() -> None:
    probs, got = _assays()
    config = {"parameters": {k: {"string_value": v} for k, v in kinds_parameter({"probs": "multitask"}).items()}}
    kinds, notes = told_kinds({"int8": config}, {}, {"probs": probs})
    assert kinds == {"probs": "multitask"} and notes
    assert headline_output({"probs": probs}, kinds, None) == "probs"
    variants = [VariantAccuracy("fp32", 1000), VariantAccuracy("int8", 1000)]
    judge_variants(variants, {"fp32": {"probs": probs}, "int8": {"probs": got}}, "fp32", DriftBudget(), kinds, None)
    judged = variants[1]
    assert judged.violations == [] and judged.drift is not None
    record = judged.drift["probs"]
    assert record["kind"] == "multitask" and abs(record["task_agreement_worst"] - 0.997) < 1e-9
    assert abs(record["label_set_agreement"] - 0.94) < 1e-9
    # read as a tagger (no kind told: a Sigmoid's output), the same answers miss on their label sets, the line naming
    # the kind
    variants = [VariantAccuracy("fp32", 1000), VariantAccuracy("int8", 1000)]
    outputs = {"fp32": {"probs": probs}, "int8": {"probs": got}}
    judge_variants(variants, outputs, "fp32", DriftBudget(), {}, None, graph=GraphWords(frozenset({"probs"})))
    assert any("--output-kind probs=multitask" in line for line in variants[1].violations), variants[1].violations
