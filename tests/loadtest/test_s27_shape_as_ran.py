"""`--shape` as it ran, not as its dry run planned (probe pl7): Locust's StepLoadShape (`run_time > 9` → None, steps of
2/4/6/8 users) ran 3 stages, its ticks a few ms after each second, and the result said "up to 8 users" with no word;
and a shape calling Locust's own `get_current_user_count()` was refused by the dry run, which had no runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

from loadtest.percentiles import LatencySummary
from loadtest.stage_figures import StageFigures
from loadtest.user_shape import ShapePlan, UserShape, plan_shape

FOLLOWS_THE_RUNNER = textwrap.dedent(
    """
    from locust import LoadTestShape

    class Follow(LoadTestShape):
        def tick(self):
            seconds = self.get_run_time()
            if seconds >= 3:
                return None
            return (self.get_current_user_count() + 2, 10)  # two more users each second
    """
)


def test_a_shape_reading_the_runners_user_count_is_planned(tmp_path: Path) -> None:
    path = tmp_path / "follow.py"
    path.write_text(FOLLOWS_THE_RUNNER)
    plan = plan_shape(str(path), "", 60.0)
    assert plan == ShapePlan("Follow", ((2, 1.0), (4, 1.0), (6, 1.0)), True)


def _stage(number: int, users: int) -> StageFigures:
    latency = LatencySummary(10, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    return StageFigures(number, 3, users, 2.0, 2.0 * (number - 1), 2.0 * number, 10, 0, 5.0, latency)


def test_the_result_records_the_stages_that_ran_and_says_which_planned_did_not() -> None:
    shape = UserShape("steps.py")
    shape.__dict__["plan"] = ShapePlan("StepLoadShape", ((2, 3.0), (4, 3.0), (6, 3.0), (8, 1.0)), True)
    ran = [_stage(1, 2), _stage(2, 4), _stage(3, 6)]
    assert shape.as_ran(ran) == 6
    assert ran[-1].note == (
        "3 of the 4 stages its dry run planned ran; the shape ended before the stage of 8 users (its clock, read a few "
        "ms after each whole second, passed an end its dry run met on the second)"
    )
    whole = [_stage(1, 2), _stage(2, 4), _stage(3, 6), _stage(4, 8)]
    assert shape.as_ran(whole) == 8 and not whole[-1].note


def test_stages_that_never_ran_are_noted_not_an_incomplete_run() -> None:
    """The shape ended by its own None: `loadtest` exits 0 (a tick() that raised is `cut_short`, exit 1)."""
    shape = UserShape("steps.py")
    shape.__dict__["plan"] = ShapePlan("StepLoadShape", ((2, 3.0), (4, 3.0)), True)
    ran = [_stage(1, 2)]
    shape.as_ran(ran)
    assert ran[-1].note and ran[-1].cut_short == ""
