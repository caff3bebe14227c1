"""The kinds a user types (`--output-kind NAME=kind`): checked against the output's values, and marked as typed.

A typed kind is the user's word on what the output is, so it is judged only as typed: the second readings a doubtful
inference adds (a sequence whose classes win by rises 3× to 10× apart judged per column too,
`optimizer.column_readings.doubted_columns`) are for kinds read off the values. `--output-kind frames=sequence`
still had its columns judged as quantities, and a faithful build refused on a column's correlation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optimizer.box_lists import named_box_list
from optimizer.image_outputs import named_image_range
from optimizer.real_axes import on_real_axes
from optimizer.split_box_lists import split_box_lists
from quantserve.errors import QuantserveError

# per-token kinds -> the kind each real token's row is measured as
TOKEN_KINDS = {"token_classification": "classification", "token_embedding": "embedding"}


class TypedKind(str):
    """A kind the user typed with --output-kind, not inferred: equal to the plain string, and judged only as it."""

    __slots__ = ()


def is_typed(kind: str) -> bool:
    """Whether `kind` came from --output-kind (`TypedKind`) rather than from the values."""
    return isinstance(kind, TypedKind)


def check_overrides(overrides: Mapping[str, str], reference: Mapping[str, np.ndarray], known: Sequence[str]) -> None:
    """One line for the first --output-kind that names no output of `reference`, no kind of `known`, or a kind its
    values cannot be measured as (`check_typed_kind`)."""
    for name, kind in overrides.items():
        if name not in reference:
            raise QuantserveError(f"--output-kind {name}={kind}: no output '{name}' (outputs: {', '.join(reference)})")
        if kind not in known:
            raise QuantserveError(f"--output-kind {name}={kind}: unknown kind; choose one of: {', '.join(known)}")
        check_typed_kind(name, kind, np.asarray(reference[name]), reference)


def check_typed_kind(name: str, kind: str, values: np.ndarray, outputs: Mapping[str, np.ndarray] | None = None) -> None:
    """One line where the typed `kind` cannot measure output `name`'s values; nothing where it can. A box_list's
    boxes (N, K, 4) may pair with a scores output among `outputs` (`optimizer.split_box_lists`)."""
    floats = np.issubdtype(values.dtype, np.floating)
    if kind in ("mask", "ids") and floats:
        raise QuantserveError(
            f"--output-kind {name}={kind}: output '{name}' holds floats ({values.dtype}); "
            f"{kind} is compared value for value, for integer labels: a probability map is dense (judged per "
            "channel, and by its decisions where its values are 0/1 flags), soft_mask (one foreground score per "
            "pixel, judged by the IoU of its map cut at --label-threshold) or, with a class per channel, class_map"
        )  # a float map passed as a mask was judged by exact equality: 0.49 of its values "changed" at 1e-4
    if kind in ("regression", "angle") and not floats:
        raise QuantserveError(
            f"--output-kind {name}={kind}: output '{name}' holds {values.dtype} values; "
            f"{'a regression' if kind == 'regression' else 'an angle'} is a float value judged by its correlation "
            "and error, integer labels or ids are ids"
        )  # accepted, class ids 0-3 were judged by correlation
    if kind == "multitask" and (not floats or on_real_axes(values).ndim != 2 or on_real_axes(values).shape[1] < 2):
        raise QuantserveError(
            f"--output-kind {name}=multitask: output '{name}' ({values.dtype}, shape {values.shape}) is not float "
            "scores or logits of two or more yes/no tasks per sample (samples, tasks); one score per sample is "
            "judged by its decisions as dense"
        )
    if kind == "soft_mask" and not floats:
        raise QuantserveError(
            f"--output-kind {name}=soft_mask: output '{name}' holds {values.dtype} labels; "
            "soft_mask cuts a float score map at --label-threshold, labels per pixel are a mask"
        )
    if kind == "box_list" and not any(group.boxes == name for group in split_box_lists(outputs or {})):
        named_box_list(name, values)  # its columns read from its values, or a one-line refusal
    if kind == "image":
        named_image_range(name, values)  # a float map in a pixel range, or a one-line refusal
    if kind == "sequence" and not floats and values.ndim != 2:
        raise QuantserveError(
            f"--output-kind {name}=sequence: output '{name}' holds {values.dtype} values of shape {values.shape}; "
            "integers are read as a sequence when they are a best path, one class id per frame: (samples, frames)"
        )
    if kind in TOKEN_KINDS and values.ndim != 3:
        raise QuantserveError(
            f"--output-kind {name}={kind}: output '{name}' has shape {values.shape}; a per-token "
            "kind needs (samples, tokens, values)"
        )
