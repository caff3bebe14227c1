"""Finiteness of input data: NaN and infinities in a float input found row by row (a bounded slice at a time),
refused with the row named, and the inputs a build records as taking NaN as a value (`NanAccepted`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantserve.errors import QuantserveError

FINITE_CHECK_BYTES = 4 << 20  # a finiteness check looks at this much of an input at a time


def check_finite(path: Path | str, name: str, array: np.ndarray, nan_ok: NanAccepted) -> None:
    """A NaN or infinity in a float input reached calibration as a NaN range, and optimize failed later with
    "fused model's output differs from the unfused model by up to 0"; name it here instead. A NaN is let through in
    the inputs `nan_ok` names: a tree ensemble's "missing" (`optimizer.nan_inputs`), which its build records."""
    if not non_finite_rows(array, _not_finite).count:  # the common case: one pass, as before NaN was told apart
        return
    infinite = non_finite_rows(array, np.isinf)
    nan = NonFinite() if name in nan_ok.names else non_finite_rows(array, np.isnan)
    if not nan.count and not infinite.count:
        return
    both = nan.count and infinite.count
    what = "NaN or infinite" if both else "NaN" if nan.count else "infinite"
    rows = np.union1d(nan.rows, infinite.rows)
    said = f"{path}: input '{name}' has {nan.count + infinite.count} {what} value(s), in {len(rows)} row(s) "
    said += f"(first: row {int(rows[0])}); inputs must be finite"
    if name in nan_ok.names:
        said += " (NaN only where the model takes it as a missing value; an infinity never)"
    elif nan.count and not both:
        said += nan_ok.refused(name)
    raise QuantserveError(said)


@dataclass(frozen=True)
class NonFinite:
    """How many values of an array a test (np.isnan, np.isinf) holds, and in which rows (axis 0), in order."""

    count: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def non_finite_rows(array: np.ndarray, test: Callable[[np.ndarray], np.ndarray]) -> NonFinite:
    """`test`'s values and rows of a float array (nothing in any other), counted FINITE_CHECK_BYTES of the array
    at a time: one mask of the whole array (and its negation) needed half as much memory again as a float32 file,
    and a file that had just fit failed here with numpy's MemoryError."""
    if not np.issubdtype(array.dtype, np.floating) or not array.size or not array.ndim:
        return NonFinite()
    flat = array.reshape(len(array), -1)  # every input has its batch axis (checked above)
    step = max(1, FINITE_CHECK_BYTES // max(1, flat.shape[1] * array.itemsize))
    rows: list[np.ndarray] = []
    count = 0
    for start in range(0, len(flat), step):
        found = test(flat[start : start + step])
        if found.any():
            count += int(found.sum())
            rows.append(start + np.flatnonzero(found.any(axis=1)))
    return NonFinite(count, np.concatenate(rows) if rows else np.zeros(0, np.int64))


def _not_finite(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values)


# How a NaN can be accepted, said where an input's NaN is refused with no build's record to name.
NAN_ROUTE = (
    ' (NaN as a value, a tree ensemble\'s "missing", is accepted where the FP32 model answers it finitely: optimize '
    "checks that and records it for the commands that serve the build)"
)


class NanAccepted:
    """The inputs that may carry NaN, as a build recorded them (`optimizer.nan_inputs`): a model that takes NaN as
    a value (LightGBM's "missing") answers it finitely, and 0 in its place moved a score by up to 1.016 (session 54).
    `recorded_by` names the record ("the served model's build", "the build at out/m"); "" where none was read.
    `names` is read only where an input holds a value that is not finite (a served config's record is read then,
    `serving.nan_parameter`)."""

    def __init__(self, names: Iterable[str] = (), recorded_by: str = "") -> None:
        self._names = frozenset(names)
        self.recorded_by = recorded_by

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def refused(self, name: str) -> str:
        """What a refusal of input `name`'s NaN adds: the record that did not accept it, or how one would."""
        if not self.recorded_by:
            return NAN_ROUTE
        return (
            f"; {self.recorded_by} did not record NaN as accepted for input '{name}' (optimize records it where the "
            "FP32 model answers NaN there finitely)"
        )
