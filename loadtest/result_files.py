"""Result dataclasses saved to and loaded from JSON: written atomically, named by model, and checked on load so a
file of another shape (hand-edited, another tool's) is one line naming the field at fault, not a report's traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from quantserve.files import write_atomic
from quantserve.json_files import strict_json


def numbers_checked(record: Any) -> None:
    """A ValueError naming the first field declared a number (int, float, or either or None) that holds another
    value: dataclasses do not check, and a string there would fail only when the report formats it. A null in a
    float field that cannot be None is read back as the NaN `write_json` wrote as null."""
    hints = typing.get_type_hints(type(record))
    for item in dataclasses.fields(record):
        hint = hints[item.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        allowed = set(typing.get_args(hint)) if union else {hint}
        value = getattr(record, item.name)
        if not allowed & {int, float} or (value is None and type(None) in allowed):
            continue
        if value is None and float in allowed:  # written as null (`strict_json`): not a number, as it was
            setattr(record, item.name, math.nan)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'{item.name}' is {value!r}, not a number")


def safe_name(name: str) -> str:
    """A model name as a file-name fragment."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_json(path: Path, result: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, strict_json(dataclasses.asdict(result), indent=2) + "\n")  # NaN as null: strict JSON
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise QuantserveError(f"{path}: not a readable results file ({exc})") from exc


def precision_of(value: Any) -> str | None:
    """A recorded precision as a string, or None (absent from older files)."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'precision' is {value!r}, not a precision such as 'int8'")
    return value or None
