"""The mixed-precision search's own cap holds its probes and steps; the winner's timing comes after it.

deepCR's cosmic-ray U-Net (session 29 probe): the winner's timing took 89 s, the mixed search's cap is 60 s, and the
steps keep the timing back inside their view: 60 − 89 < 0, so no probe or step could ever start, at any
--max-search-s, while the refusal advised more time.
"""

from __future__ import annotations

from optimizer.search_budget import STEP, TIMING, SearchBudget, mixed_view


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _budget(seconds: float, spent: float) -> SearchBudget:
    clock = Clock()
    budget = SearchBudget(seconds, clock)
    budget.costs.update({TIMING: 89.0, STEP: 20.0})
    clock.now = spent
    return budget


def test_a_timing_longer_than_the_cap_leaves_the_cap_to_the_steps() -> None:
    view = mixed_view(_budget(600.0, 220.0), 60.0)
    assert view.affords(STEP, reserve=89.0)
    assert round(view.left() - 89.0) == 60  # the steps' own 60 s, the timing's 89 s after them


def test_the_whole_searchs_end_still_binds() -> None:
    view = mixed_view(_budget(300.0, 200.0), 60.0)  # 100 s left: 11 s after the timing, under a step's 20 s
    assert not view.affords(STEP, reserve=89.0)
    assert view.bound_by_parent
