"""deploy's line for a build shipped with --allow-slower says on which side of 1.0 and of --min-speedup its speedup
was: 1.09× under --min-speedup 1.1 read "was not faster than FP32 at optimize (1.09×)" (session 60's probe); it was
faster, by less than the bar asks."""

from __future__ import annotations

import pytest

from serving.build_verdict import missed_checks


@pytest.mark.parametrize(
    ("speed", "said"),
    [
        ({"speedup": 1.09, "min_speedup": 1.1}, "was below its --min-speedup 1.1 at optimize (1.09× FP32)"),
        ({"speedup": 1.0, "min_speedup": 1.1}, "was below its --min-speedup 1.1 at optimize (1.00× FP32)"),
        ({"speedup": 1.0999, "min_speedup": 1.1}, "was below its --min-speedup 1.1 at optimize (1.0999× FP32)"),
        ({"speedup": 0.93, "min_speedup": 1.1}, "was slower than FP32 at optimize (0.93×)"),
        ({"speedup": 0.85, "min_speedup": 0.9}, "was slower than FP32 at optimize (0.85×)"),
        (
            {"speedup": 1.14, "min_speedup": 1.1, "verdict": "uncertain", "speedup_low": 0.91},
            "was not shown faster than FP32 at optimize (1.14× FP32, its timing rounds' lower bound 0.91×: "
            "rounds too spread)",
        ),
        ({"speedup": 1.05, "min_speedup": None}, "was not shown faster than FP32 at optimize (1.05× FP32)"),
        (
            {"speedup": None, "min_speedup": 1.1},
            "was not shown faster than FP32 at optimize (speedup n/a: not measured)",
        ),
    ],
)
def test_a_slower_build_is_said_on_its_side_of_1_and_of_the_bar(speed: dict[str, object], said: str) -> None:
    lines = missed_checks({"holds": True, "speed": {**speed, "holds": False}})
    assert lines == [f"{said}; shipped with --allow-slower"]
    assert not any("was not faster" in line for line in lines)
