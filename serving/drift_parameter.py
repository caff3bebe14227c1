"""The drift budget a build missed at optimize, recorded by `deploy` in the served config for the load test's verdict.

`optimize --keep-failing` ships a build that missed its drift budget (its manifest's `verification.holds` is false);
`deploy` warns of it (`serving.build_verdict`), and the served config said nothing of it. Session 56's probe: the load
test of such a build beside FP32 headlined "PASS · INT8 1.97× FP32 served", where `report --build` of the same results
read FAIL ("drift: 4 of 6 budgeted metrics within budget"). `deploy` now writes deploy's own lines for the misses as
one config parameter (JSON text), the way it records the build's speed verdict (`serving.model_config`), and
`loadtest` keeps them with each run (`loadtest.run_identity`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from serving.build_verdict import missed_checks

DRIFT_MISSED_PARAMETER = "quantserve_drift_missed"  # ["missed its drift budget …; shipped with --keep-failing", …]


def drift_missed_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for the drift checks a build missed (`missed_checks`, its speed left to the speed
    parameter); {} where it missed none."""
    drift = {key: value for key, value in (verification or {}).items() if key != "speed"}
    lines = missed_checks(drift)
    return {DRIFT_MISSED_PARAMETER: json.dumps(lines, ensure_ascii=False)} if lines else {}


def recorded_drift_misses(config: Mapping[str, Any]) -> list[str]:
    """The drift misses `deploy` recorded in a served config (Triton's JSON or `parse_config`'s dict); [] where none
    is recorded (a build that held, one deployed before they were, another tool's) or readable."""
    value = (config.get("parameters") or {}).get(DRIFT_MISSED_PARAMETER) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        lines = json.loads(str(text)) if text else []
    except ValueError:
        return []
    return [str(line) for line in lines] if isinstance(lines, list) else []
