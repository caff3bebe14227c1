"""The gates a build was judged under (`optimize --gate NAME=BY`), recorded by `deploy` for `evaluate`.

A gated output is judged only where FP32's BY reaches --label-threshold (`optimizer.gated_maps.OutputGate`); a rule
of where outputs are read, and `evaluate` applies the same budget as optimize. Unrecorded, evaluate of a deployed
swift-f0-like build judged its pitch over every frame, the unvoiced ones included, and failed what optimize had
shipped under its gate unless the user repeated --gate (session 59). Verify records the gates in the manifest's
verification (`gates`, {NAME: BY}, beside its `budget`'s label_threshold); `deploy` writes both as one config
parameter (JSON text), and `evaluate` judges under them unless its own --gate is given
(`loadtest.evaluator_gates.told_gates`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

GATES_PARAMETER = "quantserve_gates"  # {"gates": {"NAME": "BY"}, "label_threshold": 0.5} as compact JSON


def gates_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for a manifest's verification's gates and the threshold they were read at; {} where
    the build was judged under none (or the record is garbled)."""
    gates = _gates((verification or {}).get("gates"))
    if not gates:
        return {}
    record: dict[str, Any] = {"gates": dict(gates)}
    threshold = _threshold(((verification or {}).get("budget") or {}).get("label_threshold"))
    if threshold is not None:
        record["label_threshold"] = threshold
    return {GATES_PARAMETER: json.dumps(record, sort_keys=True, separators=(",", ":"))}


def recorded_gates(config: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], float | None]:
    """The (NAME, BY) gates `deploy` recorded in a served config (Triton's JSON), and the --label-threshold the
    build read them at; ((), None) where none is recorded or readable."""
    value = (config.get("parameters") or {}).get(GATES_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        record = json.loads(str(text))
    except ValueError:
        return (), None
    if not isinstance(record, dict) or not (gates := _gates(record.get("gates"))):
        return (), None
    return gates, _threshold(record.get("label_threshold"))


def _gates(record: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(record, Mapping):
        return ()
    if not all(isinstance(name, str) and isinstance(by, str) and name and by for name, by in record.items()):
        return ()
    return tuple((str(name), str(by)) for name, by in record.items())


def _threshold(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
