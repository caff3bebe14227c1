"""optimize's verification header says where the budget holds on thin evidence, as its note and evaluate's row do.

Session 63's probe (face-api's age/gender net): the header read plain "verification vs FP32 (...): budget holds"
while optimize's own note said gender's top-1 agreement 0.9933 over 300 rows shows only ≥ 0.98, not the budget's
0.99 (evaluate's row already read "ok, thin evidence", session 62).
"""

from __future__ import annotations

import io

from rich.console import Console

from optimizer.drift_budget import DriftBudget
from quantserve.cli.optimize_tables import print_verification

GENDER = {"kind": "classification", "shape": [300, 2], "top1_agreement": 0.9933, "max_abs_diff": 0.29}
THIN = {"output": "gender", "metric": "top1_agreement", "value": 0.9933, "lower_bound": 0.98, "budget": 0.99}


def _header(thin: list[dict[str, object]], holds: bool = True) -> str:
    verification = {
        "data": "heldout.npz",
        "holds": holds,
        "budget": DriftBudget().to_dict(),
        "outputs": {"gender": GENDER},
        "samples": 300,
        "thin_evidence": thin,
    }
    out = io.StringIO()
    print_verification(verification, Console(file=out, width=200))
    return out.getvalue().splitlines()[0]


def test_the_header_says_the_budget_holds_on_thin_evidence_and_where() -> None:
    header = _header([{**THIN, "rows": 300, "rows_needed": 2412}])
    assert header.endswith("budget holds on thin evidence (output 'gender': see the note)"), header


def test_rows_enough_read_plain_holds_and_a_miss_reads_missed() -> None:
    assert _header([]).endswith("budget holds"), _header([])
    assert _header([{**THIN, "rows": 300}], holds=False).endswith("budget MISSED")
