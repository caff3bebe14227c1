"""What `deploy` says of a build shipped past its own checks: `optimize --keep-failing` writes a build that missed
its drift budget (row by row, or as a stream fed its own state) and `--allow-slower` one slower than FP32, each
recorded in the manifest's verification. Deployed, such a build served without a word; the line names what
optimize found, so the operator evaluates it through the server before it takes traffic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantserve.metrics import beside_bar


def missed_checks(verification: Mapping[str, Any] | None) -> list[str]:
    """One line per check the build missed at optimize and was shipped past ([] where none)."""
    if not verification:
        return []
    lines = []
    for scope, record in (
        ("row by row", verification),
        ("as a stream fed its own state", verification.get("closed_loop")),
    ):
        if record and record.get("holds") is False:
            violations = record.get("violations") or [{}]
            first, more = violations[0].get("line", "no violation recorded"), len(violations) - 1
            said = f"missed its drift budget {scope}: {first}" + (f" (and {more} more)" if more else "")
            lines.append(f"{said}; shipped with --keep-failing")
    speed = verification.get("speed") or {}
    if speed.get("holds") is False:
        shown = beside_bar(speed.get("speedup", float("nan")), speed.get("min_speedup", 1.0))
        lines.append(f"was not faster than FP32 at optimize ({shown}×); shipped with --allow-slower")
    return lines
