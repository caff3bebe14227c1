"""A verification refusal for a check the INT8 search never puts its candidates through (the closed loop: a stateful
model fed its own state) names the search's other candidates that held the budget, says they were not put through
it, and says whether an option picks one. The model: `test_state_loop`'s accumulator (state' = 0.998·state + W·x),
at --min-top1-agreement 0.95: row by row static Q/DQ and dynamic INT8 both held (margins 0.49 and 0.73 on 512 rows),
the faster won, and fed its own state it drifted; the refusal named neither the other nor what to try (session 64).
The search now puts its runners-up through the closed loop and the rollout too (`optimizer.int8_confirm`, its tests
`test_s64_confirm_loops`): those it did not reach in its time are named as here, those it did with what they missed."""

from __future__ import annotations

from optimizer.runners_up import HELD_ALSO, MISSED, NOT_CHECKED, untried_words


def _stages(*others: dict[str, object]) -> list[dict[str, object]]:
    return [{"stage": "fuse"}, {"stage": "calibrate", "scheme": "dynamic", "searched_rows": 512, "held_also": others}]


STATIC = {"scheme": "static_qdq", "name": "static_qdq", "speedup": 1.4, "margin": 0.3, "compositions": False}
DYNAMIC = {"scheme": "dynamic_7bit", "name": "dynamic_7bit", "speedup": 1.2, "margin": 0.4, "compositions": True}


def test_each_check_the_search_did_not_run_is_named_and_one_it_ran_is_not() -> None:
    rollout = {"samples": 300, "closed_loop": {"holds": True}, "rollout": {"holds": False}}
    words, record = untried_words(rollout, _stages(STATIC))
    assert (
        "other candidate that held the budget on its 512 held-out rows, static_qdq (1.40× in the search), was not "
        in words
    )
    assert "put through the free-running rollout" in words and record[NOT_CHECKED] == "rollout"
    rows = {"samples": 900}  # the search judged 512 of them, its winner all (or not, where its time ran out)
    words, record = untried_words(rows, _stages(STATIC, DYNAMIC))
    assert "candidates that held" in words and "static_qdq (1.40× in the search), dynamic_7bit (1.20×" in words
    assert "verification's judgement on all 900 held-out rows" in words and record[HELD_ALSO] == [STATIC, DYNAMIC]
    served = {
        "samples": 300,
        "judged_at": "batches of 64 in order",
        "batch_compositions": [{"holds": True}, {"holds": True}, {"holds": True}, {"holds": False}],
    }
    words, record = untried_words(served, _stages(STATIC, DYNAMIC))  # dynamic INT8 was judged at each one
    assert record == {HELD_ALSO: [STATIC], NOT_CHECKED: "batch_compositions"}
    assert "(this one missed with batches of 64 in order)" in words
    assert untried_words(served, _stages(DYNAMIC)) == ("", {})
    in_order = {"samples": 300, "batch_compositions": [{"holds": False}, {"holds": True}]}
    assert untried_words(in_order, _stages(STATIC)) == ("", {})  # judged as the search judged it
    assert untried_words(rollout, _stages()) == ("", {})  # nothing else held
    assert untried_words(rollout, [{"stage": "calibrate"}]) == ("", {})  # a build recorded before session 64


def test_runners_up_put_through_a_check_are_named_with_what_they_missed() -> None:
    loop = {"samples": 300, "closed_loop": {"holds": False}}
    tried = {**STATIC, MISSED: "closed_loop"}
    words, record = untried_words(loop, _stages(tried))
    assert words == (
        "the search's other candidate that held the budget on its 512 held-out rows was put through the same checks "
        "in the search: static_qdq (1.40× in the search) missed the closed-loop check (each fed its own state)"
    )
    assert record == {HELD_ALSO: [tried]}  # no check left untried: no "not_checked"
    rolled = {**DYNAMIC, MISSED: "rollout"}
    words, record = untried_words(loop, _stages(tried, rolled))
    assert "candidates that held the budget on its 512 held-out rows were put through the same checks" in words
    assert "dynamic_7bit (1.20× in the search) missed the free-running rollout (each decoding on its own)" in words
    assert "no optimize option picks one" not in words
    words, record = untried_words(loop, _stages(tried, DYNAMIC))  # the search's time ran out before the second
    first, second = words.split("; ")
    assert first.endswith("static_qdq (1.40× in the search) missed the closed-loop check (each fed its own state)")
    assert second.startswith("the search's other candidate that held the budget on its 512 held-out rows, dynamic_7bit")
    assert "was not put through the closed-loop check (each fed its own state): no optimize option picks one" in second
    assert record == {HELD_ALSO: [tried, DYNAMIC], NOT_CHECKED: "closed_loop"}
