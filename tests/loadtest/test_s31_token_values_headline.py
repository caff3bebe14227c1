"""evaluate's headline scores a served (N, T) output of one value per token over its real tokens, as its budget
verdict does (issue 9, session 31): its pads' values, whatever the model computes for padding, are no answers."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData


def test_a_served_value_per_token_is_headlined_over_its_real_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 16), dtype=np.int64)
    mask[:, :8] = 1  # half of every row is padding
    data = TensorData({"input_ids": rng.integers(5, 900, (40, 16)) * mask, "attention_mask": mask})
    logits = np.where(rng.random((40, 16)) < 0.15, 6.0, -6.0) + rng.normal(0, 1.0, (40, 16))
    served = logits + rng.normal(0, 0.01, logits.shape)
    served[:, 8:] = 50.0  # whatever the INT8 model computes for padding
    outputs = {"fp32": {"logits": logits}, "int8": {"logits": served}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    int8 = next(v for v in report.variants if v.model == "int8")
    assert not int8.violations and int8.drift["logits"]["tokens_judged"] == 320
    assert int8.cosine_min is not None and int8.cosine_min > 0.99
    assert int8.max_abs_diff is not None and int8.max_abs_diff < 0.1
