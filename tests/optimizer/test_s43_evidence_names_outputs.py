"""A refusal for thin evidence names the other outputs short too, not "(and 4 more)" (session 43: a captcha reader's
five heads)."""

from __future__ import annotations

from optimizer.drift_evidence import evidence_refusal, one_answer_refusal


def _short(output: str, needed: int) -> dict[str, object]:
    return {"output": output, "metric": "top1_agreement", "budget": 0.99, "rows_needed": needed, "rows": 72}


def test_the_other_outputs_short_are_named() -> None:
    line = str(evidence_refusal([_short(f"digit_{i}", 268 if i == 0 else 200) for i in range(5)]))
    assert "output 'digit_0'" in line and "needs at least 268" in line
    assert "(outputs 'digit_1', 'digit_2', 'digit_3', 'digit_4', short too)" in line
    assert "more)" not in line


def test_one_other_output_and_many_are_said_in_a_few_words() -> None:
    two = str(evidence_refusal([_short("a", 268), _short("b", 200), _short("a", 100)]))
    assert "(output 'b', short too)" in two
    many = str(evidence_refusal([_short(f"h{i}", 300 - i) for i in range(10)]))
    assert "'h6' and 3 more, short too)" in many
    alone = str(one_answer_refusal([{"output": "p", "class": 2, "classes": 10, "rows": 40}]))
    assert "(output" not in alone and "more)" not in alone
