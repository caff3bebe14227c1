"""The user's own task metric (`--metric package.module:function`), scored on FP32 and INT8 side by side.

End-to-end task metrics (CER, mAP, F1…) are what users judge a model by; the per-output drift
metrics in `optimizer.drift` cannot know them. The relative drop is budgeted like any other drift.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.drift import DriftBudget, DriftReport, Violation, normalized_slack
from quantserve.errors import QuantserveError


@dataclass(frozen=True)
class UserMetric:
    """A task metric the user names (`--metric package.module:function`): function(outputs, labels) -> score.

    The function returns a float (higher is better) or {"value": float, "higher_is_better": bool}.
    """

    spec: str
    function: Callable[[dict[str, np.ndarray], np.ndarray | None], Any]

    @classmethod
    def load(cls, spec: str) -> UserMetric:
        """Import the function `spec` names; any problem is one user-error line."""
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise QuantserveError(f"--metric '{spec}': expected package.module:function")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or whatever the module raises while importing
            raise QuantserveError(f"--metric '{spec}': cannot import {module_name} ({exc})") from exc
        function = getattr(module, attr, None)
        if not callable(function):
            raise QuantserveError(f"--metric '{spec}': {module_name} has no function '{attr}'")
        return cls(spec, function)

    def score(self, outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> tuple[float, bool]:
        """(value, higher_is_better) of the user's function on `outputs`."""
        try:
            result = self.function(outputs, labels)
        except Exception as exc:  # the user's code: report it as their error, in one line
            raise QuantserveError(f"--metric '{self.spec}' raised {type(exc).__name__}: {exc}") from exc
        value, higher = result, True
        if isinstance(result, Mapping):
            value, higher = result.get("value"), bool(result.get("higher_is_better", True))
        number = _finite(value)
        if number is None:
            raise QuantserveError(
                f"--metric '{self.spec}' returned {result!r}; expected a finite number or "
                "{'value': finite number, 'higher_is_better': bool}"
            )
        return number, higher


def _finite(value: Any) -> float | None:
    """`value` as a float if it is a finite real number, else None: an inf passed every budget ("budget holds") and
    reached the manifest as `Infinity`, which is not JSON."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        return None
    return number if math.isfinite(number) else None


def add_user_metric(
    report: DriftReport,
    metric: UserMetric,
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    labels: np.ndarray | None,
    budget: DriftBudget,
) -> None:
    """Score FP32 and INT8 with the user's metric, record both, and judge the relative drop against the budget."""
    fp32, higher = metric.score(reference, labels)
    int8, _ = metric.score(candidate, labels)
    drop = (fp32 - int8) if higher else (int8 - fp32)
    relative = drop / abs(fp32) if fp32 != 0 else drop
    limit = budget.max_metric_drop
    report.user_metric = {
        "spec": metric.spec,
        "fp32": fp32,
        "int8": int8,
        "higher_is_better": higher,
        "relative_drop": relative,
        "max_relative_drop": limit,
    }
    report.slacks.append(normalized_slack(relative, limit, higher_is_better=False))
    if relative > limit:
        report.violations.append(Violation(metric.spec, "relative drop", relative, limit, False, scope="metric"))
