"""The out-of-time refusal says the time left when the next candidate did not fit is the time then left (session 37).

Before: HiFi-GAN's vocoder (--max-search-s 600) was told "566 s of its 600 s budget spent …, and the next candidate
(about 305 s, as long as the longest so far) would not fit in the 249 s left": 249 s was left when the candidate was
left undone, at 351 s; the search then spent 215 s on mixed-precision steps that did fit. The two figures read as a
contradiction."""

from __future__ import annotations

from optimizer.search_budget import CANDIDATE, STEP, SearchBudget


def test_time_spent_after_the_misfit_is_said() -> None:
    now = [0.0]
    budget = SearchBudget(600.0, lambda: now[0])
    now[0] = 46.0
    with budget.spend(CANDIDATE):
        now[0] = 351.0
    assert not budget.affords(CANDIDATE)
    budget.skip("the static_qdq_7bit candidate")
    while now[0] < 566.0:  # mixed-precision steps of 5 s that fit
        assert budget.affords(STEP)
        with budget.spend(STEP):
            now[0] += 5.0
    line = str(budget.refusal())
    assert line.startswith("the INT8 search ran out of time: 566 s of its 600 s budget spent "), line
    assert (
        ", and the next candidate (about 305 s, as long as the longest so far) would not fit in the 249 s then left "
        "(the 215 s since went to shorter units that fit) (left undone: the static_qdq_7bit candidate)"
    ) in line


def test_a_misfit_at_the_end_says_the_time_left() -> None:
    now = [0.0]
    budget = SearchBudget(300.0, lambda: now[0])
    with budget.spend(CANDIDATE):
        now[0] = 220.0
    assert not budget.affords(CANDIDATE)
    budget.skip("the static_qdq_7bit candidate")
    assert "would not fit in the 80 s left (left undone" in str(budget.refusal())
