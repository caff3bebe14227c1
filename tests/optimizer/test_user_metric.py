"""The user's `--metric` function: any value but a finite number is one user-error line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.user_metric import UserMetric
from quantserve.errors import QuantserveError

OUTPUTS = {"logits": np.zeros((4, 3))}


@pytest.mark.parametrize(
    "value",
    [
        math.inf,
        -math.inf,
        np.float32("inf"),
        math.nan,
        pytest.param(10**400, id="an int beyond float range"),
        {"value": math.inf, "higher_is_better": False},
        1 + 2j,
    ],
)
def test_a_value_that_is_not_a_finite_number_is_refused_in_one_line(value: object) -> None:
    """inf passed every budget ("budget holds", exit 0) and was written into the manifest as Infinity."""
    metric = UserMetric("mine:score", lambda outputs, labels: value)
    with pytest.raises(QuantserveError) as error:
        metric.score(OUTPUTS, None)
    assert str(error.value) == (
        f"--metric 'mine:score' returned {value!r}; expected a finite number or "
        "{'value': finite number, 'higher_is_better': bool}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, (0.5, True)),
        (np.float32(2.0), (2.0, True)),
        (3, (3.0, True)),
        ({"value": 1.5, "higher_is_better": False}, (1.5, False)),
    ],
)
def test_finite_numbers_score(value: object, expected: tuple[float, bool]) -> None:
    assert UserMetric("mine:score", lambda outputs, labels: value).score(OUTPUTS, None) == expected
