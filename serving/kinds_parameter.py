"""The output kinds a build was told (`optimize --output-kind NAME=kind`), recorded by `deploy` for `evaluate`.

`evaluate` infers each served output's kind afresh, so a kind the user typed at `optimize` was lost on the way: g2p-id's
LSTM encoder (session 41), shipped with `--output-kind lstm_1=embedding`, deployed and served, was failed by `evaluate`
at "'lstm_1' (classification) top-1 0.9888", its cell state's argmax judged again. The build records the typed kinds in
its manifest (`TYPED_KINDS`); `deploy` writes them as one config parameter (JSON text), and `evaluate` judges each such
output as the build was told unless its own `--output-kind` names it (`loadtest.served_graph.told_kinds`).

A kind the build's labels decided is its word too (a per-position softmax labelled a class per position judged per
position, `optimizer.output_kinds.labelled_sequence_kind`): evaluated on the same rows without their labels, it read
as CTC again and was judged by decoded sequences (session 61). Verify records those kinds (`LABELS_DECIDED`), `deploy`
writes them as a sibling parameter, and evaluate takes them where its data cannot decide
(`loadtest.served_graph.decided_kinds`); typed kinds keep priority.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optimizer.output_kinds import LABELS_DECIDED, OUTPUT_KINDS

KINDS_PARAMETER = "quantserve_output_kinds"  # {"output": "kind"} as compact JSON
LABELLED_KINDS_PARAMETER = "quantserve_labelled_kinds"  # {"output": "kind"} the build's labels decided, compact JSON


def kinds_parameter(record: object, parameter: str = KINDS_PARAMETER) -> dict[str, str]:
    """The config `parameter` for a manifest's typed kinds ({output: kind}); {} where none (or a garbled record)."""
    kinds = _kinds(record)
    return {parameter: json.dumps(kinds, sort_keys=True, separators=(",", ":"))} if kinds else {}


def labelled_kinds_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for the kinds a build's labels decided (its verification's `LABELS_DECIDED`); {} where
    none."""
    return kinds_parameter((verification or {}).get(LABELS_DECIDED), LABELLED_KINDS_PARAMETER)


def recorded_kinds(config: Mapping[str, Any], parameter: str = KINDS_PARAMETER) -> dict[str, str]:
    """{output: kind} `deploy` recorded in a served config's `parameter` (Triton's JSON); {} where none is recorded or
    readable."""
    value = (config.get("parameters") or {}).get(parameter) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        return _kinds(json.loads(str(text)))
    except ValueError:
        return {}


def recorded_labelled_kinds(config: Mapping[str, Any]) -> dict[str, str]:
    """{output: kind} the build's labels decided, as `deploy` recorded them in a served config; {} where none."""
    return recorded_kinds(config, LABELLED_KINDS_PARAMETER)


def _kinds(record: object) -> dict[str, str]:
    if not isinstance(record, Mapping):
        return {}
    if not all(isinstance(name, str) and kind in OUTPUT_KINDS for name, kind in record.items()):
        return {}
    return {str(name): str(kind) for name, kind in record.items()}
