"""`infer` shows no argmax for a value output (session 63: face-api's 136 landmark coordinates printed "argmax: 17 17
32 …", an index into (x, y) pairs that means nothing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from quantserve.cli.commands.infer import summary, summary_record, tag_cuts
from serving.kinds_parameter import kinds_parameter


def _config(*parameters: dict[str, str]) -> dict[str, Any]:
    return {"parameters": {k: {"string_value": v} for p in parameters for k, v in p.items()}}


def _landmarks(rows: int = 40) -> np.ndarray:
    """68 (x, y) points relative to a crop: a face's mean shape moved a little per row."""
    rng = np.random.default_rng(0)
    shape = rng.uniform(0.2, 0.8, 136)
    return (shape + rng.normal(0.0, 0.02, (rows, 136))).astype(np.float32)


@pytest.mark.parametrize("kind", ["dense", "regression"])
def test_a_value_output_the_build_records_prints_no_argmax(kind: str) -> None:
    points = _landmarks()
    cuts = tag_cuts({"landmarks": points}, [], None, _config(kinds_parameter({"landmarks": kind})))
    assert cuts == {"landmarks": None}
    said = summary({"landmarks": points}, None, [], cuts)
    assert "argmax:" not in said and "landmarks: values (as evaluate reads them), not class scores" in said
    record = summary_record({"landmarks": points}, None, [], cuts)
    assert "argmax" not in record and record["values"] == "landmarks"


def test_a_classifier_recorded_as_one_keeps_its_argmax() -> None:
    probs = np.random.default_rng(1).dirichlet(np.full(12, 0.1), 40).astype(np.float32)
    cuts = tag_cuts({"probs": probs}, [], None, _config(kinds_parameter({"probs": "classification"})))
    assert cuts == {}
    assert "argmax: " in summary({"probs": probs}, None, [], cuts)
