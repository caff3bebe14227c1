"""The ms beside the speedup show the speedup: one measured pair, the median pair of the median block.

The speedup is the median of paired FP32/INT8 ratios; the ms were each model's median taken apart, across blocks
timed under different loads, and a GPT-2 refusal read `1.10× (8.65 → 9.5 ms)`: INT8 slower by its own ms. The
blocks here are scripted (no timing): their ratios are the ones the gate judged, their ms what the line shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optimizer.speed as speed
from optimizer.speed import Block, SpeedSettings, compare_speed, median_index
from quantserve.cli.optimize_tables import _speed_row


def _record(blocks: list[Block], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> speed.SpeedRecord:
    queue = iter(blocks)
    monkeypatch.setattr(speed, "time_pair", lambda *_: next(queue))
    monkeypatch.setattr(speed, "_compute_share", lambda *_: (None, {}))
    settings = SpeedSettings(rounds=len(blocks), min_speedup=2.0)  # every ratio below 2: settled, none retaken
    return compare_speed(tmp_path / "a", tmp_path / "b", {"x": np.zeros((2, 3), np.float32)}, settings)


def test_the_ms_shown_are_the_median_blocks_and_show_the_speedup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # FP32's median over blocks (10 ms) and INT8's (12.5 ms) come from different blocks: 0.8× beside 1.25×
    blocks = [Block(10.0, 12.5, 0.8, 0.05, 5), Block(8.0, 6.0, 8.0 / 6.0, 0.05, 5), Block(20.0, 16.0, 1.25, 0.05, 5)]
    record = _record(blocks, monkeypatch, tmp_path)
    assert (record.speedup, record.fp32_ms, record.int8_ms) == (1.25, 20.0, 16.0)
    assert _speed_row(record.to_dict())[1] == "1.25× (20 → 16 ms)"


def test_an_even_count_of_blocks_shows_the_lower_middle_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ratios = [0.9, 1.3, 1.1, 1.2]  # median 1.15 (the verdict's), lower middle 1.1: no block measured 1.15
    blocks = [Block(11.0 * r, 11.0, r, 0.05, 5) for r in ratios]
    record = _record(blocks, monkeypatch, tmp_path)
    assert record.speedup == pytest.approx(1.15)
    assert (record.fp32_ms, record.int8_ms) == (pytest.approx(12.1), 11.0)


def test_a_block_is_its_median_pair_of_runs() -> None:
    # pairs (10, 5), (10, 20), (30, 10): ratios 2, 0.5, 3; each model's median alone: 10 and 10, i.e. 1×
    block = Block.of_pairs([10.0, 10.0, 30.0], [5.0, 20.0, 10.0], 0.1)
    assert (block.fp32_ms, block.int8_ms, block.ratio, block.others_share, block.pairs) == (10.0, 5.0, 2.0, 0.1, 3)
    # ratios 1, 3, 1.5, 2: the ratio is their median (1.75, the gate's figure as ever), the ms the lower middle pair's
    even = Block.of_pairs([4.0, 9.0, 6.0, 8.0], [4.0, 3.0, 4.0, 4.0])
    assert (even.fp32_ms, even.int8_ms, even.ratio) == (6.0, 4.0, 1.75)
    assert median_index([3.0, 1.0, 2.0]) == 2 and median_index([4.0, 1.0, 3.0, 2.0]) == 3


def test_a_whole_sample_is_timed_as_one_sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An --unbatched build of whole samples times one (T, F) clip: its row said "batch 100" (the clip's frames)."""
    monkeypatch.setattr(speed, "time_pair", lambda *_: Block(10.0, 8.0, 1.25, 0.05, 5))
    monkeypatch.setattr(speed, "_compute_share", lambda *_: (None, {}))
    clip = {"x": np.zeros((100, 105), np.float32)}
    record = compare_speed(tmp_path / "a", tmp_path / "b", clip, SpeedSettings(rounds=1), samples=1)
    assert record.batch_size == 1 and record.input_shapes == {"x": [100, 105]}
    assert _speed_row(record.to_dict())[0].startswith("speedup, batch 1, ")
