"""The user's own task metric (`--metric package.module:function`), scored on FP32 and INT8 side by side.

End-to-end task metrics (CER, mAP, F1…) are what users judge a model by; the per-output drift
metrics in `optimizer.drift` cannot know them. The relative drop is budgeted like any other drift.
The user's code runs with its prints sent to stderr: `--json` promises one JSON document on stdout and nothing else.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport, Violation, normalized_slack
from quantserve.errors import QuantserveError
from quantserve.metrics import beyond

# A candidate's violation: the metric gave no score on its outputs (NaN, infinite, or it raised). The name and value
# are session 60's, when NaN was the only way: verification records written since carry it.
NONFINITE_SCORE = "nonfinite_score"


class MetricError(QuantserveError):
    """The user's metric failed or returned no number: their error, whatever the model (never a scheme's failure)."""


class MetricNoScore(MetricError):
    """The metric gave no score on these outputs: it returned NaN or an infinity (`value`), or raised (`value` NaN);
    `did` says which ("returned nan", "raised ValueError: …"). On FP32's outputs it can judge nothing: the user's
    error, one line. On a candidate's, that candidate fails the metric and the search goes on (`_score_candidate`):
    static Q/DQ of every op made an MHC binding predictor's answers constant, Pearson read nan, and optimize exited 2
    where the dynamic candidate held (session 60); sklearn's metrics raise on such answers instead (session 61)."""

    def __init__(self, message: str, did: str, value: float = math.nan) -> None:
        super().__init__(message)
        self.did = did
        self.value = value


@dataclass(frozen=True)
class UserMetric:
    """A task metric the user names (`--metric package.module:function`): function(outputs, labels) -> score.

    The function returns a float (higher is better) or {"value": float, "higher_is_better": bool}.
    """

    spec: str
    function: Callable[[dict[str, np.ndarray], np.ndarray | None], Any]
    labels_from: str = "the data"  # the file its labels are read from: named where it has none
    no_eval: bool = False  # optimize without --eval: the held-out rows are calibration's, whose file has no labels

    @classmethod
    def load(cls, spec: str) -> UserMetric:
        """Import the function `spec` names; any problem is one user-error line."""
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise QuantserveError(f"--metric '{spec}': expected package.module:function")
        try:
            with _prints_to_stderr():
                module = _import_here_too(module_name)
                function = getattr(module, attr, None)
        except (Exception, SystemExit) as exc:  # ImportError, or whatever the module raises (or exits) while importing
            detail = _raised(exc) if isinstance(exc, SystemExit) else str(exc)
            if _not_found(exc, module_name):
                here = os.getcwd()
                detail += f"; looked on the import path and in the current folder {here}; put its folder on PYTHONPATH"
            raise QuantserveError(f"--metric '{spec}': cannot import {module_name} ({detail})") from exc
        if not callable(function):
            raise QuantserveError(f"--metric '{spec}': {module_name} has no function '{attr}'")
        return cls(spec, function)

    def score(self, outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> tuple[float, bool]:
        """(value, higher_is_better) of the user's function on `outputs`."""
        try:
            with _prints_to_stderr():
                result = self.function(outputs, labels)
        # The user's code: their error, in one line. sys.exit() in it ended evaluate/optimize silently with its code;
        # KeyboardInterrupt (a BaseException too) still interrupts.
        except (Exception, SystemExit) as exc:
            message = f"--metric '{self.spec}' raised {_raised(exc)}{self._no_labels(labels)}"
            raise MetricNoScore(message, "raised " + " ".join(_raised(exc).split())) from exc  # one line in a table
        value, higher = result, True
        if isinstance(result, Mapping):
            value, higher = result.get("value"), self._direction(result.get("higher_is_better", True))
        number = _finite(value)
        if number is None:
            message = (
                f"--metric '{self.spec}' returned {result!r}; expected a finite number or "
                "{'value': finite number, 'higher_is_better': bool}"
            )
            real = _nonfinite(value)
            raise MetricError(message) if real is None else MetricNoScore(message, f"returned {real:g}", real)
        return number, higher

    def _no_labels(self, labels: np.ndarray | None) -> str:
        """Why the function got labels=None, where it did: a retrieval mAP indexing None's classes failed with
        "IndexError: index 59 is out of bounds …", which did not say the data file had no labels (session 55)."""
        if labels is not None:
            return ""
        return f" (it was called with labels=None: {self.labels_from} has no 'labels' array)"

    def no_labels_note(self) -> str:
        """The one line saying the function was called with labels=None, and why (`metric_notes`)."""
        given = " (and no --eval was given)" if self.no_eval else ""
        return f"--metric {self.spec} was called with labels=None: {self.labels_from} has no 'labels' array{given}"

    def _direction(self, higher: Any) -> bool:
        """A returned `higher_is_better` as a bool: bool("False") is True, so a string turned the metric around."""
        if not isinstance(higher, (bool, np.bool_)):
            raise MetricError(
                f"--metric '{self.spec}' returned higher_is_better {higher!r}; expected True or False (a bool)"
            )
        return bool(higher)


def _import_here_too(module_name: str) -> Any:
    """The module `--metric` names, looked for in the current folder too where the import path has none of it.

    `python -m quantserve` puts the current folder on the import path, the `quantserve` console script does not: run
    from the folder holding mhcmetric.py, `--metric mhcmetric:pearson` read "cannot import mhcmetric" (session 60's
    probe). The folder is appended (an installed module of the same name still comes first) for this import only, so
    nothing else the run imports is shadowed by a file that happens to lie where it was started."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if not _not_found(exc, module_name) or here in sys.path:
            raise
        sys.path.append(here)
        try:
            importlib.invalidate_caches()  # a finder cached before the module was written would not see it
            return importlib.import_module(module_name)
        finally:
            sys.path.remove(here)


def _not_found(exc: BaseException, module_name: str) -> bool:
    """`exc` says the named module (or its top package) is nowhere, not that something it imports is missing."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return False
    return module_name == exc.name or module_name.startswith(f"{exc.name}.")


@contextlib.contextmanager
def _prints_to_stderr() -> Iterator[None]:
    """Whatever the user's code prints goes to stderr while it runs, not into stdout's one JSON document."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _raised(exc: BaseException) -> str:
    """The exception as "ValueError: boom", or its bare name where it says nothing (sys.exit())."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def _nonfinite(value: Any) -> float | None:
    """`value` as a float where it is a NaN or an infinity (a float's: an int beyond float's range is no score)."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class MetricComparison:
    """The user's metric on the reference (FP32) outputs and on a candidate's, and the candidate's relative drop."""

    spec: str
    reference: float
    candidate: float
    higher_is_better: bool
    labelled: bool = True  # the function was given labels (False: labels=None)
    unscored: str = ""  # what the metric did instead of scoring the candidate ("returned nan", "raised …"): it fails

    @property
    def scored(self) -> bool:
        """Whether the scores are evidence: called with labels=None, a function that gave the reference and the
        candidate the very same value (a macro-F1's 0 without a true positive anywhere) showed nothing about the
        candidate, and its drop of 0 read as held (session 59). A function that needs no labels moves with the
        outputs, so the two differ in their low digits and count."""
        return self.labelled or self.reference != self.candidate

    @property
    def relative_drop(self) -> float:
        """How much worse the candidate scores, relative to the reference's score (its plain drop where that is 0)."""
        drop = self.reference - self.candidate if self.higher_is_better else self.candidate - self.reference
        return drop / abs(self.reference) if self.reference != 0 else drop


def compare_user_metric(
    metric: UserMetric,
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    labels: np.ndarray | None,
    fp32_score: tuple[float, bool] | None = None,
) -> MetricComparison:
    """Score the reference's and the candidate's outputs with the user's metric (the reference's direction counts);
    `fp32_score`: the reference's score already taken on these outputs and labels (the INT8 search's, up front)."""
    fp32, higher = fp32_score or metric.score(reference, labels)  # FP32's NaN or raise: one line (it judges nothing)
    other, unscored = _score_candidate(metric, candidate, labels)
    return MetricComparison(metric.spec, fp32, other, higher, labels is not None, unscored)


def _score_candidate(
    metric: UserMetric, candidate: dict[str, np.ndarray], labels: np.ndarray | None
) -> tuple[float, str]:
    """(score, "") of the candidate's outputs, or (NaN or the infinity returned, what the metric did instead) where
    it gave none (`MetricNoScore`): that candidate fails the metric (`add_user_metric`), the others are judged."""
    try:
        return metric.score(candidate, labels)[0], ""
    except MetricNoScore as unscored:
        return unscored.value, unscored.did


def add_user_metric(
    report: DriftReport,
    metric: UserMetric,
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    labels: np.ndarray | None,
    budget: DriftBudget,
    fp32_score: tuple[float, bool] | None = None,
) -> None:
    """Score FP32 and INT8 with the user's metric, record both, and judge the relative drop against the budget
    (`fp32_score`: FP32's, where already taken: `compare_user_metric`)."""
    compared = compare_user_metric(metric, reference, candidate, labels, fp32_score)
    if compared.unscored:
        _add_unscored(report, metric, compared, candidate, budget.max_metric_drop)
        return
    relative, limit = compared.relative_drop, budget.max_metric_drop
    report.user_metric = {
        "spec": metric.spec,
        "fp32": compared.reference,
        "int8": compared.candidate,
        "higher_is_better": compared.higher_is_better,
        "relative_drop": relative if compared.scored else None,  # None: not measured (`MetricComparison.scored`)
        "max_relative_drop": limit,
        **({} if compared.scored else {"scored": False}),
        **({} if compared.labelled else {"no_labels": metric.no_labels_note()}),
    }
    if not compared.scored:  # no evidence either way: the other budgets judge
        return
    report.slacks.append(normalized_slack(relative, limit, higher_is_better=False))
    if beyond(relative, limit, False):
        report.violations.append(metric_violation(metric.spec, relative, limit))
        report.rank()


def _add_unscored(
    report: DriftReport,
    metric: UserMetric,
    compared: MetricComparison,
    candidate: dict[str, np.ndarray],
    limit: float,
) -> None:
    """The candidate whose outputs the metric gave no score (NaN, infinite, or it raised): it fails the metric,
    recorded with the reason, and ranks as one that lost the whole score (a relative drop of 1)."""
    why = unscored_words(compared.unscored, candidate)
    report.user_metric = {
        "spec": metric.spec,
        "fp32": compared.reference,
        "int8": compared.candidate,  # written as null: not a number to judge by
        "higher_is_better": compared.higher_is_better,
        "relative_drop": None,
        "max_relative_drop": limit,
        "failed": f"{metric.spec} {why}",
        **({} if compared.labelled else {"no_labels": metric.no_labels_note()}),
    }
    report.slacks.append(normalized_slack(1.0, limit, higher_is_better=False))
    failed = MetricUnscored(metric.spec, NONFINITE_SCORE, math.nan, limit, False, scope="metric", where=why)
    report.violations.append(failed)
    report.rank()


def unscored_words(did: str, candidate: Mapping[str, np.ndarray], whose: str = "candidate") -> str:
    """Why a candidate has no score, from what the metric `did` ("returned nan", "raised ValueError: …"): "returned
    nan on this candidate's outputs (they are all one value: a correlation or a normalized score of them is
    undefined)"."""
    numbers = [np.asarray(v) for v in candidate.values() if np.asarray(v).dtype.kind in "biuf"]  # no string outputs
    constant = all(v.size > 1 and np.ptp(v.astype(np.float64)) == 0 for v in numbers)
    nonfinite = any(not np.isfinite(v).all() for v in numbers if v.dtype.kind == "f")
    if constant and numbers:
        cause = " (they are all one value: a correlation or a normalized score of them is undefined)"
    elif nonfinite:
        cause = " (they hold NaN or infinite values)"
    else:
        cause = ""
    return f"{did} on this {whose}'s outputs{cause}"


@dataclass(frozen=True)
class MetricUnscored(Violation):
    """The user's metric NaN, infinite or raising on a candidate's outputs while it scored FP32's: no drop to weigh
    against --max-metric-drop, the candidate fails the metric (`where` says why)."""

    def line(self, kind: str = "") -> str:
        """E.g. "metric 'm:pearson': returned nan on this candidate's outputs (…); it fails the metric"."""
        return f"{self.scope} '{self.output}': {self.where}; it fails the metric"


def metric_violation(spec: str, relative_drop: float, limit: float) -> Violation:
    """The user metric's relative drop beyond its budget, e.g. "metric 'm:f1': relative drop 0.25 > budget 0.01"."""
    return Violation(spec, "relative drop", relative_drop, limit, False, scope="metric")


def metric_notes(record: Mapping[str, Any] | None) -> list[str]:
    """The one note of a metric record (`add_user_metric`, evaluate's) whose function got labels=None, saying too
    where that left it unscored; none where it had labels."""
    if not record or not record.get("no_labels"):
        return []
    if record.get("scored", True):
        return [record["no_labels"]]
    value = record.get("fp32", record.get("reference"))
    return [
        f"{record['no_labels']}; it scored FP32 and INT8 alike ({value:g}), which shows nothing about INT8: recorded "
        "as not scored, the other budgets judge (a 'labels' array in the held-out file, or --eval with one, lets it "
        "score)"
    ]
