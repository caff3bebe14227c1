"""What `deploy` says of a build shipped past its own checks: `optimize --keep-failing` writes a build that missed
its drift budget (row by row, as a stream fed its own state, or decoding on its own) and `--allow-slower` one slower
than FP32, each recorded in the manifest's verification. Deployed, such a build served without a word; the line
names what optimize found, so the operator evaluates it through the server before it takes traffic."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quantserve.metrics import beside_bar


def missed_checks(verification: Mapping[str, Any] | None) -> list[str]:
    """One line per check the build missed at optimize and was shipped past ([] where none)."""
    if not verification:
        return []
    lines = [f"{said}; shipped with --keep-failing" for said in _drift_misses(verification)]
    speed = verification.get("speed") or {}
    if speed.get("holds") is False:
        lines.append(f"{_speed_miss(speed)}; shipped with --allow-slower")
    return lines


def _speed_miss(speed: Mapping[str, Any]) -> str:
    """What the speed gate found, on the side of 1.0 and of the bar the speedup is: a build timed 1.09× under
    --min-speedup 1.1 was said "not faster than FP32 at optimize (1.09×)" (session 60's probe); it was faster, by less
    than the bar asks. A speedup at or over the bar missed on spread rounds (`optimizer.speed_verdict`: the lower
    bound under 1.0), or over 1.0 beside a bar recorded as null, is not shown faster."""
    speedup, recorded_bar = _figure(speed.get("speedup")), _figure(speed.get("min_speedup"))
    bar = recorded_bar or 1.0  # null as absent: the bar only picks the speedup's digits
    if not speedup:
        return "was not shown faster than FP32 at optimize (speedup n/a: not measured)"
    shown = beside_bar(speedup, bar)
    if speedup < min(1.0, bar):
        return f"was slower than FP32 at optimize ({shown}×)"
    if recorded_bar and speedup < recorded_bar:
        return f"was below its --min-speedup {recorded_bar:g} at optimize ({shown}× FP32)"
    low = _figure(speed.get("speedup_low"))
    spread = f", its timing rounds' lower bound {low:.2f}×: rounds too spread" if low is not None else ""
    return f"was not shown faster than FP32 at optimize ({shown}× FP32{spread})"


def _figure(value: Any) -> float | None:
    """A recorded figure as a float, None where it is not a finite number: a NaN is written to the manifest as null
    (`quantserve.json_files`), which formatted as a number had crashed deploy (session 59)."""
    finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if finite else None


def _drift_misses(verification: Mapping[str, Any]) -> list[str]:
    """The drift checks missed, each with its first violation: row by row (the top-level violations: its `holds`
    is every check's), as a stream fed its own state (`closed_loop`), decoding on its own (`rollout`). g2p's GRU
    decoder held row by row and was warned "missed its drift budget row by row: no violation recorded", its
    rollout miss (0.9502 < 0.98) unsaid."""
    loop, roll = verification.get("closed_loop") or {}, verification.get("rollout") or {}
    missed = [f"as a stream fed its own state: {_first(loop)}"] if loop.get("holds") is False else []
    missed += [_rollout_miss(roll)] if roll.get("holds") is False else []
    if verification.get("violations") or (verification.get("holds") is False and not missed):
        missed.insert(0, f"row by row: {_first(verification)}")  # no cause recorded: said as it was
    return [f"missed its drift budget {said}" for said in missed]


def _first(record: Mapping[str, Any]) -> str:
    violations = record.get("violations") or [{}]
    first, more = violations[0].get("line", "no violation recorded"), len(violations) - 1
    return first + (f" (and {more} more)" if more else "")


def _rollout_miss(roll: Mapping[str, Any]) -> str:
    from optimizer.rollout import rolled_out

    agreement, budget = _figure(roll.get("sequence_agreement")), _figure(roll.get("budget"))
    said = rolled_out({"starts": "?", "steps": "?", **roll})  # optimize's own words for what it is the share of
    shown = f"{agreement:.4f} <" if agreement is not None else "n/a (not measured),"
    return (
        f"decoding on its own: output '{roll.get('output', '?')}' free-running rollout agreement {shown} "
        f"budget {'n/a' if budget is None else f'{budget:g}'} ({said})"
    )
