"""A speedup just under --min-speedup is printed on its side of the bar: 1.0999 read "INT8 is 1.10× FP32 here, below
--min-speedup 1.1" (session 40, an ATSPM detector graph timed at 1.095–1.0999)."""

from __future__ import annotations

import pytest

from optimizer.speed import SpeedRecord
from quantserve.metrics import beside_bar


@pytest.mark.parametrize(
    ("speedup", "bar", "shown"),
    [(1.0999, 1.1, "1.0999"), (1.097, 1.1, "1.097"), (1.104, 1.1, "1.104"), (1.1, 1.1, "1.10"), (0.68, 1.1, "0.68")],
)
def test_a_speedup_is_shown_on_its_side_of_the_bar(speedup: float, bar: float, shown: str) -> None:
    assert beside_bar(speedup, bar) == shown


def test_the_refusal_line_never_shows_the_bar_itself_for_a_speedup_below_it() -> None:
    record = SpeedRecord(10.0, 10.0 / 1.0999, 1.0999, 1.1, 8, 2, "a CPU", round_speedups=(1.0999,) * 5)
    line = str(record.line())
    assert line.startswith("INT8 is 1.0999× FP32 here, below --min-speedup 1.1"), line


def test_deploys_warning_shows_a_speedup_below_the_bar_on_its_side() -> None:
    from serving.build_verdict import missed_checks

    lines = missed_checks({"speed": {"holds": False, "speedup": 1.0965, "min_speedup": 1.1}})
    assert lines == ["was below its --min-speedup 1.1 at optimize (1.097× FP32); shipped with --allow-slower"]
