"""optimize's verification table and evaluate's terminal show a value output's |INT8 − FP32| in its own units.

Session 63's probe (face-api's age/gender net): the age head (years) was shown only as its normalized channel
figures and an unlabelled "max_abs_diff 7.143"; evaluate's terminal block, titled "output 'gender'", showed gender's
max abs diff 0.29 and nothing of age.
"""

from __future__ import annotations

import io

from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from optimizer.drift_budget import DriftBudget
from quantserve.cli.evaluate_tables import print_table
from quantserve.cli.optimize_tables import print_verification

AGE = {
    "kind": "dense",
    "shape": [300],
    "channel_correlation_worst": 0.9941752937127062,
    "channel_error_worst": 0.1095775094152089,
    "channel_gain_worst": 0.0015081783214857536,
    "max_abs_diff": 7.143363952636719,
    "mean_abs_diff": 1.1549094820022583,
    "p95_abs_diff": 3.0801,
}
GENDER = {
    "kind": "classification",
    "shape": [300, 2],
    "top1_agreement": 0.9933333333333333,
    "max_abs_diff": 0.29062891006469727,
    "mean_abs_diff": 0.023887793286897552,
}


def _verification() -> dict[str, object]:
    return {
        "data": "heldout.npz",
        "holds": True,
        "budget": DriftBudget().to_dict(),
        "outputs": {"age": AGE, "gender": GENDER},
        "samples": 300,
    }


def _printed(verification: dict[str, object]) -> str:
    out = io.StringIO()
    print_verification(verification, Console(file=out, width=200))
    return out.getvalue()


def test_optimize_shows_a_value_outputs_difference_in_its_own_units() -> None:
    text = _printed(_verification())
    age = text.split("output age")[1].split("output gender")[0]
    row = next(line for line in age.splitlines() if "|Δ|" in line)
    assert "its own units" in row and "mean 1.155, p95 3.08, max 7.143" in row, text
    gender = text.split("output gender")[1]
    assert "|Δ|" not in gender and "max_abs_diff" in gender  # a score's figure as it was


def _report() -> AccuracyReport:
    drift = {"age": AGE, "gender": GENDER}
    int8 = VariantAccuracy("ag_int8", 300, None, 0.0239, 0.2906, drift=drift, precision="int8")
    fp32 = VariantAccuracy("ag_fp32", 300, None, 0.0, 0.0, precision="fp32")
    return AccuracyReport("ag_fp32", "heldout.npz", "gender", False, 1.0, [fp32, int8], DriftBudget().to_dict())


def test_evaluate_shows_every_value_outputs_difference_and_says_where_the_others_are() -> None:
    out = io.StringIO()
    print_table(_report(), Console(file=out, width=200))
    text = out.getvalue()
    assert "output 'gender'" in text and "other outputs" in text, text
    row = next(line for line in text.splitlines() if "age" in line and "7.143" in line)
    assert "1.155" in row and "3.08" in row and "ag_int8" in row, text
