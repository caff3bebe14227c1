"""JSON the tool writes its results to, strict: a NaN or infinity written as null, never as the bare `NaN` token
Python's `json` writes by default, which no other JSON reader takes (Node's JSON.parse failed on evaluate's
accuracy.json, session 58). Readers of a number that may be non-finite take null back as NaN
(`loadtest.result_files.numbers_checked`) or show it as not measured."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_json(value: Any) -> Any:
    """NaN and infinities as null, recursively: what `json.dumps` writes stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def strict_json(value: Any, **options: Any) -> str:
    """`json.dumps` of `value` with its non-finite numbers as null; a non-finite one left anywhere raises
    ValueError (allow_nan=False) rather than write a file other readers refuse."""
    return json.dumps(finite_json(value), allow_nan=False, **options)
