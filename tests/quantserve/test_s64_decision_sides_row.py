"""The verification table shows a score's minority side beside its decision agreement: "1" alone had read as
proof on 400 rows where 4 lay below the threshold (@vladmandic/human's antispoof, probe A, session 64)."""

from __future__ import annotations

from rich.console import Console

from quantserve.cli.optimize_tables import print_verification

SIDES = [
    {"side": "below", "threshold": 0.5, "rows": 4, "agreement": 1.0},
    {"side": "above", "threshold": 0.5, "rows": 396, "agreement": 1.0},
]


def test_the_decision_row_shows_the_minority_side() -> None:
    console = Console(record=True, width=160)
    output = {"kind": "dense", "decision_agreement": 1.0, "decision_ties": 0, "decision_sides": SIDES}
    print_verification({"outputs": {"spoof": output}}, console)
    text = console.export_text()
    assert "1 (below 0.5: 4 rows, 1)" in text, text


def test_the_flag_row_shows_the_minority_side() -> None:
    console = Console(record=True, width=160)
    output = {"kind": "dense", "flag_agreement": 0.9975, "decision_sides": [{**SIDES[0], "agreement": 0.75}]}
    print_verification({"outputs": {"spoof": output}}, console)
    text = console.export_text()
    assert "0.9975 (below 0.5: 4 rows, 0.75)" in text, text
