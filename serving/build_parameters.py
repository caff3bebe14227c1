"""What `deploy` records of a build in the served config, and how clients read it back: its precision, its source
model's identity and its in-process speed verdict, each one config parameter.

Clients (the load test's verdict, evaluate, the runners) read what a served model is from the server, not from its
name or a build folder they may not have.
"""

from __future__ import annotations

import json
from typing import Any

# The config parameter `deploy` records the build's precision under (its manifest's `precision`): clients read what a
# model really is from the server, not from its name (an INT8 build deployed as `sw_fp32` was judged as FP32).
# Triton and its backends ignore parameters they do not know.
PRECISION_PARAMETER = "quantserve_precision"
# ... and the source model's identity: the sha256 of the build's FP32 reference (fp32.onnx, the exported and fused
# source model, byte for byte the same in an INT8 and an FP32 build of one model), so a report pairs INT8 with FP32
# only where both are variants of one model (a digits CNN was judged 0.61x an unrelated linear model).
SOURCE_PARAMETER = "quantserve_source"
# ... and the build's in-process speed verdict (`quantserve optimize`'s, in its manifest), so a report of a load test
# of the served model judges it without being given the build folder: a build refused for speed and deployed with
# --allow-slower (0.97x in-process) read "verdict: PASS" in every report but one given --build (session 51)
SPEED_PARAMETER = "quantserve_in_process_speed"
# With the share of the cores other processes took while it was timed, so a report says what optimize said of a busy
# machine's figure (session 52: "3.07× in-process" with no word of the 50 % others took).
# And the rounds' verdict with its lower bound: a build whose median cleared the bar on rounds too spread to show it
# (`optimizer.speed_verdict`, "uncertain") read "below its speed budget" at 1.15× against 1.1.
SPEED_KEYS = (
    "speedup",
    "holds",
    "min_speedup",
    "threads",
    "batch_size",
    "cpu",
    "busy",
    "others_share",
    "verdict",
    "speedup_low",
    # the clock that decided and CPU time's figure: on a busy machine CPU time decides (`optimizer.speed_blocks`), and
    # a report quoting the wall clock's 4.42× beside a 3.13× that decided said the wrong figure (probe 65E)
    "basis",
    "cpu_speedup",
)


def recorded_precision(config: dict[str, Any]) -> str | None:
    """The precision `deploy` recorded in a config (the dict Triton's get_model_config or `parse_config` gives), or
    None where none is recorded (deployed before it was, or not by quantserve)."""
    precision = _string_parameter(config, PRECISION_PARAMETER)
    return precision.lower() if precision else None


def recorded_source(config: dict[str, Any]) -> str | None:
    """The source model's identity `deploy` recorded in a config (`SOURCE_PARAMETER`), or None where none is."""
    return _string_parameter(config, SOURCE_PARAMETER)


def _string_parameter(config: dict[str, Any], name: str) -> str | None:
    """The string value of config parameter `name` (as Triton's get_model_config or `parse_config` gives it), None
    where the config has none."""
    value = (config.get("parameters") or {}).get(name) or {}
    text = value.get("string_value") if isinstance(value, dict) else None
    return str(text) if text else None


def speed_parameter(speed: dict[str, Any] | None) -> dict[str, str]:
    """The config parameter recording a build's in-process speed verdict (`SPEED_PARAMETER`); none where the build
    was not timed (an FP32 build)."""
    if not speed or "speedup" not in speed:
        return {}
    return {SPEED_PARAMETER: json.dumps({key: speed[key] for key in SPEED_KEYS if key in speed}, sort_keys=True)}


def recorded_speed(config: dict[str, Any]) -> dict[str, Any] | None:
    """The in-process speed verdict `deploy` recorded in a config, or None where none is (or it cannot be read)."""
    text = _string_parameter(config, SPEED_PARAMETER)
    try:
        speed = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(speed, dict) or "speedup" not in speed:
        return None
    # a speedup of null is a NaN the build timed (strict JSON): kept, so the verdict fails it rather than read the
    # build as untimed and pass (session 59)
    return speed if speed["speedup"] is None or isinstance(speed["speedup"], int | float) else None
