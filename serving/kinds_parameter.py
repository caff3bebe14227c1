"""The output kinds a build was told (`optimize --output-kind NAME=kind`), recorded by `deploy` for `evaluate`.

`evaluate` infers each served output's kind afresh, so a kind the user typed at `optimize` was lost on the way: g2p-id's
LSTM encoder (session 41), shipped with `--output-kind lstm_1=embedding`, deployed and served, was failed by `evaluate`
at "'lstm_1' (classification) top-1 0.9888", its cell state's argmax judged again. The build records the typed kinds in
its manifest (`TYPED_KINDS`); `deploy` writes them as one config parameter (JSON text), and `evaluate` judges each such
output as the build was told unless its own `--output-kind` names it (`loadtest.served_graph.told_kinds`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optimizer.output_kinds import OUTPUT_KINDS

KINDS_PARAMETER = "quantserve_output_kinds"  # {"output": "kind"} as compact JSON


def kinds_parameter(record: object) -> dict[str, str]:
    """The config parameter for a manifest's typed kinds ({output: kind}); {} where none (or a garbled record)."""
    kinds = _kinds(record)
    return {KINDS_PARAMETER: json.dumps(kinds, sort_keys=True, separators=(",", ":"))} if kinds else {}


def recorded_kinds(config: Mapping[str, Any]) -> dict[str, str]:
    """{output: kind} `deploy` recorded in a served config (Triton's JSON); {} where none is recorded or readable."""
    value = (config.get("parameters") or {}).get(KINDS_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        return _kinds(json.loads(str(text)))
    except ValueError:
        return {}


def _kinds(record: object) -> dict[str, str]:
    if not isinstance(record, Mapping):
        return {}
    if not all(isinstance(name, str) and kind in OUTPUT_KINDS for name, kind in record.items()):
        return {}
    return {str(name): str(kind) for name, kind in record.items()}
