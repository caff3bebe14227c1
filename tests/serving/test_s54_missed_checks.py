"""deploy's warnings for a build shipped past its drift checks, one per check missed, none for one that held. g2p's
GRU decoder (session 54), built with --keep-failing, held row by row (top-1 0.9975, no violation) and missed fed its
own state and decoding on its own: deploy warned "missed its drift budget row by row: no violation recorded" and
nothing of the rollout's 0.9502 < 0.98."""

from __future__ import annotations

from typing import Any

from serving.build_verdict import missed_checks

STREAM_LINE = "output 'logits': top-1 agreement 0.9833 < budget 0.99"
ROLLOUT = {"output": "logits", "starts": 1024, "steps": 8, "sequence_agreement": 0.9501953125, "budget": 0.98}


def _g2p(**overrides: Any) -> dict[str, Any]:
    """The --keep-failing build's verification, trimmed: its `holds` is every drift check's."""
    record = {
        "holds": False,
        "violations": [],
        "top1_agreement": 0.9975,
        "closed_loop": {"holds": False, "violations": [{"line": STREAM_LINE}]},
        "rollout": {**ROLLOUT, "holds": False},
    }
    return {**record, **overrides}


def test_a_build_that_held_row_by_row_is_warned_of_the_stream_and_the_rollout_it_missed() -> None:
    assert missed_checks(_g2p()) == [
        f"missed its drift budget as a stream fed its own state: {STREAM_LINE}; shipped with --keep-failing",
        "missed its drift budget decoding on its own: output 'logits' free-running rollout agreement 0.9502 < budget "
        "0.98 (share of 1024 starts whose 8 generated tokens match FP32); shipped with --keep-failing",
    ]


def test_only_the_checks_missed_are_warned() -> None:
    held = {"holds": True, "violations": []}
    assert missed_checks(_g2p(closed_loop=held)) == [missed_checks(_g2p())[1]]  # the rollout alone
    assert missed_checks(_g2p(rollout={**ROLLOUT, "holds": True})) == [missed_checks(_g2p())[0]]
    row = {"line": "output 'logits': top-1 agreement 0.95 < budget 0.99"}
    lines = missed_checks(_g2p(violations=[row], closed_loop=held, rollout={**ROLLOUT, "holds": True}))
    assert lines == [f"missed its drift budget row by row: {row['line']}; shipped with --keep-failing"]
    assert missed_checks({"holds": True, "closed_loop": held, "rollout": {**ROLLOUT, "holds": True}}) == []


def test_a_miss_with_no_cause_recorded_is_still_warned() -> None:
    """A manifest whose `holds` is false with nothing recorded behind it: the miss is said, not dropped."""
    assert missed_checks({"holds": False}) == [
        "missed its drift budget row by row: no violation recorded; shipped with --keep-failing"
    ]


def test_a_rollout_ended_at_fp32s_end_token_is_said_so() -> None:
    from serving.build_verdict import _rollout_miss

    roll = {"output": "logits", "sequence_agreement": 0.95, "budget": 0.98, "starts": 323, "steps": 26}
    assert _rollout_miss({**roll, "sequence_starts": True, "end_token": 3}).endswith(
        "(share of 323 sequence starts whose generated tokens match FP32's up to its end token, at most 26 steps "
        "(ended at FP32's token 3))"
    )
    assert _rollout_miss(roll).endswith("(share of 323 starts whose 26 generated tokens match FP32)")
