"""optimize's verification table printed an empty table under each member of a split box list ("output
Identity_4:0 (box_list)" and no rows): its figures are the box list's. Now one line says which box list judged it
(session 66 review of optimizer.split_box_lists)."""

from __future__ import annotations

from rich.console import Console

from quantserve.cli.optimize_tables import print_verification


def test_a_member_of_a_split_box_list_says_which_box_list_judged_it() -> None:
    console = Console(record=True, width=200)
    verification = {
        "data": "held-out",
        "budget": {"min_box_agreement": 0.95},
        "outputs": {
            "boxes": {"kind": "box_list", "box_agreement": 1.0, "box_iou_mean": 0.98},
            "scores": {"kind": "box_list", "shape": [32, 100], "judged_with": "boxes"},
        },
    }
    print_verification(verification, console)
    text = console.export_text()
    assert "output scores (box_list): judged as part of the box list of 'boxes'" in text
    assert "box_agreement" in text


def test_an_output_verified_per_request_shows_the_share_that_missed() -> None:
    """SLANet-plus INT8's table under "budget MISSED" showed cosine_mean and max_abs_diff with no budget, not the
    share of requests of FP32's length (0.04167 < 0.98) that missed (probe 66I)."""
    console = Console(record=True, width=200)
    record = {"kind": "per request", "requests": 72, "requests_same_shape": 0.04167, "cosine_mean": 0.78}
    verification = {
        "holds": False,
        "budget": {"min_sequence_agreement": 0.98, "min_cosine_mean": 0.99, "min_cosine_worst": 0.97},
        "outputs": {"structure": {**record, "cosine_worst": 0.35, "max_abs_diff": 0.9}},
    }
    print_verification(verification, console)
    text = console.export_text()
    assert "share of FP32's length of 72 requests" in text and "0.98" in text
    assert "cosine_worst" in text and "0.97" in text
