"""The inputs whose NaN a build accepts (`optimizer.nan_inputs`), recorded by `deploy` for the commands sending data.

A LightGBM export takes NaN as "missing" (session 54): optimize accepts NaN in an input where the FP32 model answers
its NaN rows finitely and records the input in its manifest (`NAN_INPUTS`). `deploy` writes those names as one config
parameter (JSON text), the way it records the kinds a build was told (`serving.kinds_parameter`), and `infer`,
`evaluate` and `loadtest` read it from the served model's config: they accept NaN in those inputs alone (an infinity
never), and a NaN elsewhere is refused naming the record that did not accept it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from optimizer.nan_inputs import nan_input_names
from quantserve.finite_data import NanAccepted

NAN_PARAMETER = "quantserve_nan_inputs"  # ["input", …] as compact JSON
SERVED_BUILD = "the served model's build"


def nan_parameter(record: object) -> dict[str, str]:
    """The config parameter for a manifest's `NAN_INPUTS` record; {} where none (or a garbled record)."""
    names = nan_input_names(record)
    return {NAN_PARAMETER: json.dumps(sorted(names), separators=(",", ":"))} if names else {}


def recorded_nan_inputs(config: Mapping[str, Any]) -> frozenset[str]:
    """The inputs `deploy` recorded as accepting NaN in a served config (Triton's JSON); none where none is recorded
    or readable."""
    value = (config.get("parameters") or {}).get(NAN_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        names = json.loads(str(text))
    except ValueError:
        return frozenset()
    return nan_input_names(names) if isinstance(names, list) else frozenset()


def served_nan_accepted(config: Mapping[str, Any] | None) -> NanAccepted:
    """The NaN a served model accepts, for `check_against`, read from its config (None: unread, so none)."""
    return NanAccepted(recorded_nan_inputs(config or {}), SERVED_BUILD)


class ServedNanAccepted(NanAccepted):
    """`served_nan_accepted` of a config read by `read` (None where unread) at the first NaN or infinity found: data
    that is all finite reads no config."""

    def __init__(self, read: Callable[[], Mapping[str, Any] | None]) -> None:
        super().__init__((), SERVED_BUILD)
        self._read = read
        self._read_names: frozenset[str] | None = None

    @property
    def names(self) -> frozenset[str]:
        if self._read_names is None:
            self._read_names = recorded_nan_inputs(self._read() or {})
        return self._read_names


def served_config_at(url: str, model: str, tls: Any = None, timeout_s: float = 30.0) -> dict[str, Any]:
    """The config `model` is served with at `url` (Triton's JSON), for `infer`, whose runner keeps none."""
    from serving.client import TritonGrpcClient

    with TritonGrpcClient(url, timeout_s, tls) as client:
        return dict(client.model_config(model))
