"""evaluate leaves out the values FP32 itself answers NaN, as the drift budget's rows do (session 58): a pitch model
whose decoder divides 0/0 on silence read cosine 0.84375 against itself, INT8 0.66345 in the table beside 0.6674 in
the budget row, "max_abs_diff 0" beside 1097 INT8 NaN where FP32 was finite, and a static INT8 build was said to
answer by its batch's rows because NaN was compared as unequal to NaN."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.variant_scores import score_variant
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData


def _cents() -> tuple[np.ndarray, np.ndarray]:
    """FP32 NaN on silent frames of a few rows; INT8 NaN there too, and on a frame FP32 answers."""
    ref = np.random.default_rng(0).uniform(100, 200, (32, 20))
    ref[::4, 5:9] = np.nan
    got = ref + np.random.default_rng(1).normal(0, 1, ref.shape)
    got[3, 2] = np.nan
    return ref, got


def test_the_reference_against_itself_reads_one() -> None:
    ref, _ = _cents()
    scored = score_variant("fcpe_fp32", ref, ref.copy(), None)
    assert scored.cosine_mean == pytest.approx(1.0) and scored.cosine_min == pytest.approx(1.0)
    assert scored.mean_abs_diff == 0.0 and scored.max_abs_diff == 0.0


def test_the_table_and_the_budget_row_read_one_cosine() -> None:
    ref, got = _cents()
    scored = score_variant("fcpe_int8", ref, got, None)
    record = measure_drift({"cents": ref}, {"cents": got}, {"cents": "embedding"}, DriftBudget()).outputs["cents"]
    assert scored.cosine_mean == pytest.approx(record["cosine_mean"], abs=1e-12)
    assert scored.cosine_min == record["cosine_worst"] == 0.0  # row 3's NaN where FP32 is finite
    assert scored.max_abs_diff == math.inf == record["max_abs_diff"]  # not 0: a NaN where FP32 is finite


def test_nan_at_the_same_places_alone_and_batched_is_no_batch_dependence(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, _ = _cents()
    data = TensorData({"mel": np.zeros((32, 3), np.float32)})

    def served(url: str, model: str, rows: TensorData, *_: Any) -> dict[str, np.ndarray]:
        return {"cents": ref[: len(rows)].copy()}

    monkeypatch.setattr(evaluator, "served_outputs", served)
    assert evaluator.neighbour_dependence("u", "fcpe_int8", data, 16, "held.npz", 5.0, {"cents": ref}) == []
    moved = ref.copy()
    moved[1, 0] = np.nan
    assert evaluator.neighbour_dependence("u", "fcpe_int8", data, 16, "held.npz", 5.0, {"cents": moved})
