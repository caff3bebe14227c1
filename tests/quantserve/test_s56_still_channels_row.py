"""The verification table says how many channels the worst channel correlation skipped as still in FP32 (session 56:
Baidu LAC's 10 unused tag slots had read as a worst channel of 0)."""

from __future__ import annotations

from rich.console import Console

from quantserve.cli.optimize_tables import print_verification


def test_the_worst_channel_row_counts_the_still_channels() -> None:
    console = Console(record=True, width=160)
    output = {"kind": "token_classification", "channel_correlation_worst": 0.9987, "channels": 59, "channels_still": 10}
    print_verification({"outputs": {"emissions": output}}, console)
    text = console.export_text()
    assert "0.9987 (10 of 59 channels still in FP32, skipped)" in text, text


def test_the_worst_channel_row_names_its_axis_and_entry() -> None:
    """A denoiser's (N, 1, H, W) output: its worst "channel" was an image row (axis 2), read as its one colour
    channel where the table named no axis (probe P2, topaz-em's U-Net, session 56)."""
    console = Console(record=True, width=160)
    output = {"kind": "dense", "channel_correlation_worst": 0.9988, "channel_worst_axis": 2, "channel_worst": 55}
    print_verification({"outputs": {"denoised": output}}, console)
    text = console.export_text()
    assert "0.9988 (axis 2, entry 55)" in text, text
