"""The refusal's "(and 1 more: …)" names where each further violation lies: tempocnn's INT8 refusal said "(and 1 more:
output 'dense_6' top-1 agreement on one class 0.3333)" — which class, its user could not tell (class 108, 6 rows,
answered 2/3 tempo) — and a per-position figure over frames said "per-token" there (session 62)."""

from __future__ import annotations

from optimizer.drift_checks import Violation
from optimizer.verify import others_named


def test_a_further_lost_class_is_named_with_its_rows() -> None:
    lost = Violation("dense_6", "class_agreement", 2 / 6, 0.99, where="the 6 rows FP32 answers class 108")
    line = others_named([lost.to_dict()])
    assert (
        line
        == " (and 1 more: output 'dense_6' top-1 agreement on one class (the 6 rows FP32 answers class 108) 0.3333)"
    )


def test_a_further_per_position_figure_says_position() -> None:
    frames = Violation("stages", "token_agreement", 0.95, 0.99, unit="positions")
    tokens = Violation("tags", "token_agreement", 0.95, 0.99)
    line = others_named([frames.to_dict(), tokens.to_dict()])
    assert "output 'stages' per-position top-1 agreement 0.95" in line, line
    assert "output 'tags' per-token top-1 agreement 0.95" in line, line
