"""Two readings the values leave open, and what a refusal on them says.

A sequence whose columns may be quantities. Class scores share one unit and win by rising about as much as one another
(`optimizer.row_kinds.win_rise_ratio`: 1.0-1.2 on CTC, tagger and noise logits); columns of different quantities do
not (OpenSpindleNet's confidence, offset and duration per segment: 28×) and are dense (`optimizer.output_kinds`). Rises
3× to 10× apart could be either: such a sequence is judged per column as a dense output too, and of the two readings a
build must hold both (as a 2-D output the graph does not place is judged per token and as an embedding,
`optimizer.token_axes`).

A signal map of one value per position, (N, L, 1), is judged per position (`optimizer.output_kinds`): each of its L
positions' values correlated over the samples. OpenSpindleNet's (N, 7500, 1) segmentation was refused at "worst channel
correlation 0.9593" — position 7346, in the window's last 0.6 s — with 99.83 % of its per-sample decisions kept, and the
line named neither the position nor what the user could do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optimizer.output_kinds import KIND_SAMPLES
from optimizer.real_axes import on_real_axes
from optimizer.row_kinds import DOUBTED_RISE_RATIO, QUANTITY_RISE_RATIO, row_form, win_rise_ratio
from optimizer.typed_kinds import is_typed

CHANNEL_METRICS = ("channel_correlation_worst", "channel_error_worst")
# a channel metric -> the record's key of the entry (here: the position) its worst value lies at
WORST_ENTRY = {"channel_correlation_worst": "channel_worst", "channel_error_worst": "channel_error_worst_channel"}


def doubted_columns(kind: str, values: np.ndarray) -> float:
    """A raw (N, T, C) output read as a sequence: how far apart its classes' wins are where that lies from
    DOUBTED_RISE_RATIO up to QUANTITY_RISE_RATIO (from there it is dense); 0.0 otherwise, and for distributions, which
    are class scores whatever their rises, and for a sequence the user typed (`--output-kind NAME=sequence`: judged
    only as typed, `optimizer.typed_kinds`). Read off its first KIND_SAMPLES rows, as its kind is."""
    values = on_real_axes(values)
    if kind != "sequence" or is_typed(kind) or values.ndim != 3 or values.shape[2] < 2 or not values.size:
        return 0.0
    rows = values[:KIND_SAMPLES].reshape(-1, values.shape[2]).astype(np.float64)
    if row_form(rows) != "raw":
        return 0.0
    ratio = win_rise_ratio(rows)
    return ratio if DOUBTED_RISE_RATIO <= ratio < QUANTITY_RISE_RATIO else 0.0


def columns_hint(name: str, ratio: float) -> str:
    """The line a per-column (dense) verdict of a doubted sequence carries."""
    return (
        f"read as per-position class scores, though its classes win by rises {ratio:.1f}× apart, as columns of "
        f"different quantities do (a score, an offset, a length), so judged per column too: if they are quantities, "
        f"pass --output-kind {name}=dense, if each position is a class of its own, --output-kind "
        f"{name}=token_classification"
    )


def position_map_doubt(
    name: str, kind: str, shape: tuple[int, ...], record: Mapping[str, Any], failed: Iterable[str]
) -> str:
    """The line a refusal on a (N, L, 1) map's channel figures carries: judged per position, where the worst lies,
    and what the user can do — a `--metric` scores what the task reads of it (events found, decisions at its
    threshold) but is judged beside the output's own budget, so only --keep-failing ships past it; "" otherwise."""
    judged = set(failed)  # a generator: read once
    missed = [metric for metric in CHANNEL_METRICS if metric in judged]
    if kind not in ("dense", "regression", "angle") or len(shape) != 3 or shape[2] != 1 or shape[1] < 2 or not missed:
        return ""
    worst = record.get(WORST_ENTRY[missed[0]])
    at = f", the worst at position {worst} of {shape[1]}" if worst is not None else ""
    fired = record.get("anchors_judged")  # an anchor head's: where FP32 fires (`optimizer.anchor_heads`)
    each = f"each of its {shape[1]} positions" if fired is None else f"each of the {fired} positions FP32 fires at"
    return (
        f"judged per position: {each} a channel of its own over the {shape[0]} samples{at}; "
        "a --metric (the events found, its decisions at a threshold) is judged beside this, not instead: where that "
        "holds, optimize --keep-failing ships the build with this miss recorded"
    )
