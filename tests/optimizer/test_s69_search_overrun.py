"""The INT8 search does not start a piece of work it cannot expect to finish by its deadline, and a big output's
per-channel drift is measured in a few passes, to the same figures.

human-models' nanodet (--max-search-s 600) was refused out of time after 714 s: a piece begun shortly before the
deadline ran to its end. CenterNet's (40, 128, 128, 80) heatmap took 65 s in `channel_metrics`, one unstoppable piece
(session 68). The clock here is fake (advanced by the pieces' own lengths), so nothing depends on this machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_int8_search import detector, images

import optimizer.int8_search as int8_search
import quantserve.metrics.blocks as blocks
from optimizer.channel_gain import gain_errors, keep_worst_gain
from optimizer.channel_metrics import (
    STILL_LEVEL,
    _cross_axes,
    _keep_worst,
    _still,
    _unless,
    channel_axis,
    channel_metrics,
    quiet_channels,
    quiet_cut,
)
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import BUDGETED
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.search_budget import CANDIDATE, DeadlineReached, SearchBudget
from quantserve import metrics

BATCH_S = 120.0  # fake seconds one held-out batch of the static candidate takes
VNNI = frozenset({"avx2", "avx512_vnni"})


def old_channel_metrics(kind: str, reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5) -> dict:
    """`channel_metrics` as it was before session 69, each figure its own pass of `quantserve.metrics` (the parts it
    shares with today's, unchanged, imported)."""
    axis = channel_axis(kind, reference)
    if reference.size == 0 or reference.ndim < 1:
        return {}
    correlations = metrics.channel_correlations(reference, candidate, axis)
    errors = metrics.relative_error(reference, candidate, axis)
    record: dict[str, Any] = {
        "relative_error": float(metrics.relative_error(reference, candidate)[0]),
        "channels": int(correlations.size),
        "channels_constant": int(np.isnan(correlations).sum()),
        "channel_relative_error_worst": float(errors.max()),
    }
    judged = "channel_error_worst" in BUDGETED[kind]
    spread_errors = metrics.channel_errors(reference, candidate, axis) if judged else None
    correlations, spread_errors = _old_skip_still(record, reference, axis, correlations, spread_errors)
    cut = quiet_cut(kind, reference, threshold)
    quiet = quiet_channels(record, reference, candidate, axis, cut, threshold)
    _keep_worst(record, axis, *_unless(quiet, correlations, spread_errors))
    if judged:
        keep_worst_gain(record, np.where(quiet, np.nan, gain_errors(reference, candidate, axis, correlations)), axis)
    others = _cross_axes(kind, reference, axis)
    if others:
        record["channel_axes"] = {str(a): int(reference.shape[a]) for a in (axis, *others) if a is not None}
    for other in others:
        still = _still(metrics.channel_spreads(reference, other))[0]
        still |= quiet_channels(record, reference, candidate, other, cut, threshold)
        across = np.where(still, np.nan, metrics.channel_correlations(reference, candidate, other))
        across_errors = np.where(still, np.nan, metrics.channel_errors(reference, candidate, other))
        _keep_worst(record, other, across, across_errors)
    return record


def _old_skip_still(
    record: dict, reference: np.ndarray, axis: int | None, correlations: np.ndarray, errors: Any
) -> Any:
    if axis is None or correlations.size < 2:
        return correlations, errors
    spreads = metrics.channel_spreads(reference, axis)
    others = tuple(a for a in range(reference.ndim) if a != axis)
    level = np.abs(reference.mean(axis=others, dtype=np.float64))
    still, median = _still(spreads)
    still &= (spreads < STILL_LEVEL * level) & ~np.isnan(correlations)
    record["channels_still"] = int(still.sum())
    if not still.any():
        return correlations, errors
    if errors is not None:
        errors = np.where(still, errors * spreads / median, errors)
    return np.where(still, np.nan, correlations), errors


def _pair(shape: tuple[int, ...], seed: int, scores: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A reference and an INT8-like candidate: noisy, one channel rescaled, one collapsed, one constant, one still."""
    rng = np.random.default_rng(seed)
    ref = rng.random(shape, dtype=np.float32) ** 6 if scores else rng.standard_normal(shape).astype(np.float32) * 3
    if len(shape) > 2 and shape[1] > 2:
        ref[:, 0] = 0.25 if scores else -13.7  # constant along axis 1
        ref[:, 1] = ref[:, 1] * 1e-5 + (0.03 if scores else -13.7)  # still (and quiet where these are scores)
        ref[..., -1] = ref[..., -1] * 0.05  # quiet along the last axis, where these are scores
    if scores:
        ref[:, :, :2] = np.maximum(ref[:, :, :2], 0.95)  # turns something on at 0.5
    new = ref + rng.standard_normal(shape).astype(np.float32) * 0.01
    if len(shape) > 1 and shape[1] > 2:
        new[:, -1] = 0.0  # collapsed
        new[:, -2] *= 1.3  # rescaled
    new = np.clip(new, 0.0, 1.0) if scores else new
    return ref, new.astype(np.float32)


CASES = [
    ("dense", (6, 9, 7, 5), True),  # NCHW scores: quiet channels, cross axis
    ("dense", (6, 9, 7, 5), False),  # a feature map: still and constant channels
    ("dense", (5, 4, 11), True),
    ("sequence", (4, 10, 12), False),
    ("regression", (40, 3), False),
    ("embedding", (30, 8), False),
    ("dense", (64,), False),  # one channel: the whole output
    ("dense", (8, 1, 6, 4), False),  # an axis of one entry
]


@pytest.mark.parametrize("block_bytes", [blocks.BLOCK_BYTES, 800, 64])
@pytest.mark.parametrize(("kind", "shape", "scores"), CASES)
def test_channel_metrics_gives_the_figures_it_gave_to_the_bit(
    kind: str, shape: tuple[int, ...], scores: bool, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every figure and entry named equals the old function's, exactly (json: each float's repr), with big outputs
    cut into many blocks (a small BLOCK_BYTES: rows and columns at a time, down to one column)."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(metrics, "BLOCK_BYTES", block_bytes)
    for seed in range(3):
        ref, new = _pair(shape, seed, scores)
        old = old_channel_metrics(kind, ref, new)
        assert old, (kind, shape)
        assert json.dumps(channel_metrics(kind, ref, new), sort_keys=True) == json.dumps(old, sort_keys=True)


def test_channel_metrics_of_structured_values_equal_the_old() -> None:
    """Integers, ties and a candidate equal to the reference: exact sums, argmin ties and zero errors alike."""
    ref = np.arange(2 * 6 * 4 * 3, dtype=np.float32).reshape(2, 6, 4, 3) % 7
    for new in (ref.copy(), ref + 1.0, np.round(ref / 3) * 3, np.zeros_like(ref)):
        expect = json.dumps(old_channel_metrics("dense", ref, new), sort_keys=True)
        assert json.dumps(channel_metrics("dense", ref, new), sort_keys=True) == expect


def test_a_piece_expected_to_end_past_the_stop_is_not_started() -> None:
    """Pieces are timed from one `check` to the next; one whose part took longer, in this unit or an earlier one,
    than the time left is not begun: DeadlineReached names it. A part never timed begins on any time left."""
    now = [0.0]
    budget = SearchBudget(100.0, lambda: now[0])

    def unit(parts: list[tuple[str, float]]) -> None:
        for part, seconds in parts:
            budget.check(part)
            now[0] += seconds

    budget.attempt(CANDIDATE, "the first", lambda: unit([("measuring drift of output 'hm'", 50.0)]))
    with pytest.raises(DeadlineReached) as stopped, budget.stoppable(CANDIDATE):
        unit([("the held-out drift run", 10.0), ("measuring drift of output 'hm'", 50.0)])
    assert stopped.value.part == "measuring drift of output 'hm'" and now[0] == 60.0  # 40 s left: not begun
    with budget.stoppable(CANDIDATE):  # never timed: begun, whatever its length
        unit([("the profile", 30.0)])
    assert now[0] == 90.0


def test_a_search_whose_batches_are_slow_ends_within_its_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The static candidate's held-out batches take BATCH_S each: three of 120 s on a 300 s budget once ran the third
    past the deadline (360 s). The third is not begun: the search ends within max(5 %, 15 s) of its budget, refused
    out of time in the same words."""
    now = [0.0]
    ended: list[float] = []  # when each slowed batch ended
    run = OnnxRuntimeRunner.infer_impl

    def infer(runner: OnnxRuntimeRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "static_qdq" in runner.path.name:
            now[0] += BATCH_S
            ended.append(now[0])
        return run(runner, feeds)

    monkeypatch.setattr(OnnxRuntimeRunner, "infer_impl", infer)
    monkeypatch.setattr(int8_search, "SearchBudget", lambda seconds: SearchBudget(seconds, lambda: now[0]))
    settings = SearchSettings(max_search_s=300.0, max_probes=4, timing_repeats=1)
    search = SearchInt8(images(64, 1), images(128, 2), search=settings, cpu_flags=VNNI)
    with pytest.raises(BudgetExceeded) as refused:
        search(detector(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    spent = refused.value.record["time_budget"]
    assert spent["overran_s"] <= max(0.05 * 300.0, 15.0) and max(ended) <= 300.0 + 15.0, (spent, ended)
    assert math.isclose(spent["spent_s"], 240.0)  # two batches; the third would end at 360 s
    assert str(refused.value).startswith(
        "the INT8 search ran out of time: 240 s of its 300 s budget spent before any INT8 model was verified within "
        "the drift budget and timed (left undone: the static_qdq candidate, stopped at the deadline during the "
        "held-out drift run); nothing written: the first candidate ran 240 s before it was stopped: raise the budget "
        "with --max-search-s (e.g. --max-search-s 480"
    )
