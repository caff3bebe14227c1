"""The gates and --label-threshold a build was judged under (`optimize --gate NAME=BY --label-threshold T`), recorded by
`deploy` for `evaluate`.

A gated output is judged only where FP32's BY reaches --label-threshold (`optimizer.gated_maps.OutputGate`); a rule
of where outputs are read, and `evaluate` applies the same budget as optimize. Unrecorded, evaluate of a deployed
swift-f0-like build judged its pitch over every frame, the unvoiced ones included, and failed what optimize had
shipped under its gate unless the user repeated --gate (session 59). --label-threshold is such a rule too (where a
score's decisions, a mask's pixels, a box list's boxes are read), and was carried only beside gates: a build given
--label-threshold alone was evaluated at the default (session 60). Verify records the gates in the manifest's
verification (`gates`, {NAME: BY}) and a --label-threshold given (`label_threshold`, beside them); `deploy` writes
both as one config parameter (JSON text), and `evaluate` judges under them unless given its own
(`loadtest.evaluator_gates.told_gates`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# {"gates": {"NAME": "BY"}, "label_threshold": 0.5, "label_threshold_given": true} as compact JSON: label_threshold
# is the one the gates were read at, and optimize's own --label-threshold where label_threshold_given (a build
# recorded before session 60 carries gates and the threshold they were read at, given or not)
GATES_PARAMETER = "quantserve_gates"


def gates_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for a manifest's verification's gates and the threshold they were read at, and its
    --label-threshold where given; {} where the build was judged under neither (or the record is garbled)."""
    verification = verification or {}
    gates = _gates(verification.get("gates"))
    given = _threshold(verification.get("label_threshold"))  # optimize's --label-threshold, where given
    if not gates and given is None:
        return {}
    record: dict[str, Any] = {"gates": dict(gates)} if gates else {}
    threshold = given if given is not None else _threshold((verification.get("budget") or {}).get("label_threshold"))
    if threshold is not None:
        record["label_threshold"] = threshold
    if given is not None:
        record["label_threshold_given"] = True
    return {GATES_PARAMETER: json.dumps(record, sort_keys=True, separators=(",", ":"))}


def recorded_gates(config: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], float | None]:
    """The (NAME, BY) gates `deploy` recorded in a served config (Triton's JSON), and the --label-threshold the
    build read them at; ((), None) where none is recorded or readable."""
    record = _record(config)
    if not (gates := _gates(record.get("gates"))):
        return (), None
    return gates, _threshold(record.get("label_threshold"))


def recorded_label_threshold(config: Mapping[str, Any]) -> float | None:
    """The --label-threshold the build was given at optimize, as `deploy` recorded it in a served config; None where
    it was not given (or the record is unreadable)."""
    record = _record(config)
    return _threshold(record.get("label_threshold")) if record.get("label_threshold_given") is True else None


def _record(config: Mapping[str, Any]) -> dict[str, Any]:
    value = (config.get("parameters") or {}).get(GATES_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        record = json.loads(str(text))
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


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
