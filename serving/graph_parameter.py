"""The reference graph's word on a build's outputs, recorded by `deploy` in its served config for `evaluate`.

`optimize` reads each output's kind with facts of the FP32 reference graph (`optimizer.graph_words`: the
outputs a Sigmoid makes, which 2-D outputs are per token, which are a recurrent layer's state); `evaluate` has only
the server. Without them a Sigmoid's multi-label output optimize judged by its label sets read `dense` through the
served endpoint, another verdict on the same build. The build records them in its manifest; `deploy` writes them as
one config parameter (JSON text), read back here. A config without it (deployed by an older quantserve, or not by
quantserve) reads None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optimizer.graph_words import GraphWords, words_from_record, words_record

GRAPH_PARAMETER = "quantserve_graph_outputs"  # {"sigmoid": [...], "token_axes": {...}, "state": [...]}, compact JSON


def graph_parameter(record: object) -> dict[str, str]:
    """The config parameter for a manifest's graph_outputs record; {} where the manifest has none (or a garbled
    one). Recorded also where the graph names no output: evaluate then knows the graph said nothing."""
    words = words_from_record(record)
    if words is None:
        return {}
    return {GRAPH_PARAMETER: json.dumps(words_record(words), sort_keys=True, separators=(",", ":"))}


def recorded_graph(config: Mapping[str, Any]) -> GraphWords | None:
    """The graph's word `deploy` recorded in a served config (Triton's JSON); None where none is recorded."""
    value = (config.get("parameters") or {}).get(GRAPH_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        return words_from_record(json.loads(str(text)))
    except ValueError:
        return None
