"""docs/transformer.md says what the code does: where the drift budget lives and what it holds for an encoder,
how long the training is, and which retrieval figures `evaluate` records.

Before: it imported `optimizer.transformer.DriftBudget` (no such name), listed two of the encoder's four budget
figures (not worst cosine ≥ 0.97 nor the 1-point accuracy drop), gave "about 10 s" for a training a probe's
optimize spent 21 min in, and said `evaluate` prints a retrieval table it only saves in accuracy.json (session 62)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import numpy as np

from examples import text_encoder
from optimizer.drift_budget import DriftBudget
from optimizer.drift_metrics import output_metrics

DOC = (Path(__file__).resolve().parents[2] / "docs" / "transformer.md").read_text()
FLAT = " ".join(DOC.split())


def test_every_dotted_name_the_doc_gives_imports() -> None:
    for dotted in re.findall(r"`((?:optimizer|examples|quantserve|loadtest|serving)\.[\w.]+)`", DOC):
        module, _, name = dotted.rpartition(".")
        try:
            importlib.import_module(dotted)
        except ImportError:
            assert hasattr(importlib.import_module(module), name), f"docs/transformer.md names {dotted}"


def test_the_budget_the_doc_lists_is_the_default_one() -> None:
    budget = DriftBudget()
    start = FLAT.index("The drift budget (")
    said = FLAT[start : FLAT.index("(`--eval`)", start)]
    assert f"top-1 agreement ≥ {budget.min_top1_agreement:.0%}" in said
    assert f"accuracy drop ≤ {budget.max_accuracy_drop_points:g} point" in said
    assert f"mean cosine ≥ {budget.min_cosine_mean:g}" in said
    assert f"worst sample's cosine ≥ {budget.min_cosine_worst:g}" in said


def test_the_training_the_doc_describes_is_the_examples_loop() -> None:
    defaults = inspect.signature(text_encoder.train).parameters
    steps, batch = defaults["steps"].default, defaults["batch_size"].default
    assert f"{steps} AdamW steps of {batch} sequences" in FLAT
    assert "about 10 s on 2 free cores, 30 s on shared ones" not in FLAT  # a figure with no date or load


def test_the_retrieval_keys_the_doc_names_are_the_ones_evaluate_saves() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 8)).astype(np.float32)
    saved = output_metrics("embedding", reference, reference + 0.01 * rng.normal(size=reference.shape))
    start = FLAT.index("Neither prints the retrieval rows")
    named = set(re.findall(r"`(\w+)`", FLAT[start : FLAT.index("on the terminal", start)])) - {"evaluate"}
    assert named == {"neighbour_k", "neighbours_unchanged", "neighbour_overlap", "nearest_changed", "neighbour_regret"}
    assert named <= set(saved) and saved["neighbour_k"] == 5
    assert "its `loadtest`/`evaluate` print these tables" not in FLAT
