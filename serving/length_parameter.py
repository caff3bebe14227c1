"""The length input a build was told (`optimize --length-input NAME|none`), recorded by `deploy` for `evaluate`.

`evaluate` reads each row's real tokens afresh, so the user's word at `optimize` on which input counts them was lost
on the way: a tagger built with `--length-input n_chars` beside a `max_len` decode limit was judged by served
evaluate on `max_len`'s positions, its pads diluting the changed tags, unless the user repeated the flag (session 57).
The build records the choice in its manifest (`optimizer.token_lengths.LENGTH_INPUT`); `deploy` writes it as one
config parameter beside the kinds it was told (`serving.kinds_parameter`), and `evaluate` reads real tokens as the
build was told unless its own `--length-input` says otherwise (`loadtest.served_graph.told_length_input`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LENGTH_PARAMETER = "quantserve_length_input"  # an input's name, or "none" (optimizer.token_lengths.LENGTH_OFF)


def length_parameter(record: object) -> dict[str, str]:
    """The config parameter for a manifest's `LENGTH_INPUT` record (a name or "none"); {} where none (inferred)."""
    return {LENGTH_PARAMETER: record} if isinstance(record, str) and record.strip() else {}


def recorded_length(config: Mapping[str, Any]) -> str | None:
    """The --length-input `deploy` recorded in a served config (Triton's JSON); None where none is recorded."""
    value = (config.get("parameters") or {}).get(LENGTH_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    return text if isinstance(text, str) and text.strip() else None
