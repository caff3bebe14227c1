"""The class INT8 loses worst is named, and the others lost beyond chance counted (session 62, MEGnet).

MEGnet's INT8 refusal said "top-1 agreement on one class (the 47 rows FP32 answers class 2) 0.8936" — the class with
the smallest binomial p-value — while class 1 (12 rows) agreed on 0.75, also beyond chance, and was never named: a
user fixing the named class went to the wrong one. The worst agreeing class beyond chance is named now, and how many
others are beyond chance too, with their figures. One class alone reads as before (test_s39, test_s53)."""

from __future__ import annotations

import numpy as np

from optimizer.class_agreement import lost_class, lost_classes
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget

# MEGnet's INT8 on 400 held-out rows (probe E): [class, rows FP32 answers, of those INT8 answers alike]
MEGNET = {"classes_answered": 4, "class_flips": [[1, 12, 9], [2, 47, 42], [3, 83, 78], [0, 258, 249]]}


def test_the_worst_class_beyond_chance_is_named_first() -> None:
    assert lost_class(MEGNET, 0.99) == (1, 12, 9)
    assert lost_classes(MEGNET, 0.99) == [(1, 12, 9), (2, 47, 42), (3, 83, 78), (0, 258, 249)]
    chance_only = {"classes_answered": 4, "class_flips": [[1, 3, 2], [2, 47, 42]]}  # 2 of 3: chance at 0.99
    assert lost_classes(chance_only, 0.99) == [(2, 47, 42)]


def _answers(counts: dict[int, tuple[int, int]], classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One-hot (N, classes) FP32 and INT8 rows: FP32 answers class c on counts[c][0] rows, INT8 alike on counts[c][1]
    of them, the next class on the rest."""
    fp32, int8 = [], []
    for label, (rows, agreeing) in counts.items():
        fp32 += [label] * rows
        int8 += [label] * agreeing + [(label + 1) % classes] * (rows - agreeing)
    eye = np.eye(classes, dtype=np.float32)
    return eye[fp32] * 0.9 + 0.025, eye[int8] * 0.9 + 0.025


def test_the_refusal_names_the_worst_class_and_counts_the_others() -> None:
    fp32, int8 = _answers({1: (12, 9), 2: (47, 42), 3: (83, 78), 0: (258, 258)})
    report = measure_drift({"merge_output": fp32}, {"merge_output": int8}, {}, DriftBudget())
    (line,) = [v.line("classification") for v in report.violations if v.metric == "class_agreement"]
    assert line == (
        "output 'merge_output' (classification): top-1 agreement on one class (the 12 rows FP32 answers class 1; "
        "2 more classes beyond chance: class 2 0.8936 on 47 rows, class 3 0.9398 on 83 rows) 0.75 < budget 0.99"
    ), line
    fp32, int8 = _answers({1: (12, 9), 2: (47, 42), 0: (341, 341)})
    report = measure_drift({"o": fp32}, {"o": int8}, {}, DriftBudget())
    (line,) = [v.line() for v in report.violations if v.metric == "class_agreement"]
    assert "(the 12 rows FP32 answers class 1; 1 more class beyond chance: class 2 0.8936 on 47 rows) 0.75" in line
