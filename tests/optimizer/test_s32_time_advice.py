"""Where the INT8 search ran out of time before any candidate finished, its advice starts from what it measured.

OpenSpindleNet at the default --max-search-s 300 on a busy 2-core EPYC (load 10): its set-up (the FP32 reference run
over 160 held-out windows and the profile) alone took 377 s, and the refusal said "e.g. --max-search-s 600" — twice
the budget, leaving 223 s for a calibration and a held-out run that each take about as long as that set-up. Judged on
a budget's fake clock: nothing depends on timing.
"""

from __future__ import annotations

from optimizer.search_budget import CANDIDATE, DeadlineReached, SearchBudget


def clocked(seconds: float) -> tuple[SearchBudget, list[float]]:
    now = [0.0]
    return SearchBudget(seconds, lambda: now[0]), now


def test_a_set_up_past_the_budget_sizes_the_advice_from_the_set_up() -> None:
    budget, now = clocked(300.0)
    now[0] = 377.0  # the reference run and the FP32 profile
    assert not budget.affords(CANDIDATE)
    budget.skip("the static_qdq candidate")
    line = str(budget.refusal())
    assert line.endswith(
        "(left undone: the static_qdq candidate); nothing written: its set-up (the FP32 reference run and profile) "
        "alone took 377 s and no candidate started: raise the budget with --max-search-s (e.g. --max-search-s 1140: "
        "the set-up, and twice as long again for a candidate) or deploy fp32"
    ), line
    assert budget.record()["setup_s"] == 377.0


def test_a_candidate_stopped_at_the_deadline_sizes_the_advice_from_its_time_and_its_calibration() -> None:
    """The set-up took 75 s; calibration's chunks ran to 120 s into the candidate, its held-out run was stopped."""
    budget, now = clocked(240.0)
    now[0] = 75.0
    assert budget.affords(CANDIDATE)

    def candidate() -> None:
        for chunk in range(1, 5):
            now[0] = 75.0 + 30.0 * chunk
            budget.check("calibration: min/max ranges")
        for batch in range(1, 5):
            now[0] = 195.0 + 26.0 * batch
            budget.check("the held-out drift run")

    assert budget.attempt(CANDIDATE, "the static_qdq candidate", candidate) is None
    line = str(budget.refusal())
    assert "(left undone: the static_qdq candidate, stopped at the deadline during the held-out drift run)" in line
    assert line.endswith(
        "nothing written: its set-up took 75 s and the first candidate ran 172 s before it was stopped (its "
        "calibration alone 120 s): raise the budget with --max-search-s (e.g. --max-search-s 420: the set-up, and "
        "twice what the candidate ran) or deploy fp32"
    ), line


def test_a_candidate_that_finished_keeps_the_advice_to_double_the_budget() -> None:
    """What is left undone then is more candidates and steps, each measured: time for as much again."""
    budget, now = clocked(300.0)
    now[0] = 65.0
    with budget.spend(CANDIDATE):
        now[0] = 220.0
    budget.affords(CANDIDATE)
    budget.skip("the static_qdq_7bit candidate")
    assert str(budget.refusal()).endswith(
        "raise the budget with --max-search-s (e.g. --max-search-s 600) or deploy fp32"
    )


def test_a_stopped_unit_is_not_counted_as_finished() -> None:
    budget, now = clocked(10.0)

    def stopped() -> None:
        now[0] = 11.0
        raise DeadlineReached("the profile")

    assert budget.attempt(CANDIDATE, "the dynamic candidate", stopped) is None
    assert CANDIDATE not in budget.finished and budget.cost(CANDIDATE) == 11.0
