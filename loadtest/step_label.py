"""How tables and notes name a load step: `m @ 8 users`, `m @ 200 req/s poisson`, `m replaying trace.csv (…)`,
`m staged, all stages together (up to 40 users)` (`LoadResult.label`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.arrival_trace import MEAN_TOLERANCE
from loadtest.stage_figures import StageFigures


def step_label(
    model: str,
    mode: str,
    users: int,
    rate_rps: float | None,
    arrivals: str | None,
    trace: dict[str, Any] | None,
    offered_rps: float | None,
    stages: list[StageFigures],
) -> str:
    """The step's label from its load: a replayed trace and its rate, an open loop's rate and arrivals, a staged
    shape's users, or a closed loop's users."""
    if mode == "open" and trace:
        return f"{model} replaying {Path(trace['file']).name} ({trace_rate(rate_rps, offered_rps)})"
    if mode == "open":
        return f"{model} @ {rate_rps:g} req/s {arrivals}"
    if mode == "staged":
        return f"{model} staged, all stages together (up to {users_ran(stages, users)})"
    return f"{model} @ {users} users"


def users_ran(stages: list[StageFigures], users: int) -> str:
    """`40 users`: the most that ran; `24 users; the shape asked 40` where Locust's runner never had as many
    running as the stages that ran asked (session 46: a --shape cut 3 s into a rise to 40 users at 8/s read "up
    to 40 users"). A cut run counts the stages it ran, not those planned."""
    asked = max((stage.users for stage in stages), default=users)
    counted = [stage.reached for stage in stages if stage.reached is not None]
    ran = max(counted) if len(counted) == len(stages) and counted else asked
    words = f"{ran} user{'s' if ran != 1 else ''}"
    return words if ran >= asked else f"{words}; the shape asked {asked}"


def trace_rate(rate_rps: float | None, offered_rps: float | None) -> str:
    """The rate a replayed trace offered in the window: the pass's mean, or, where the window played part of a
    pass (its offered arrivals off that mean by over MEAN_TOLERANCE), its own beside the mean (10 s of a 30 s
    diurnal pass offered 184.3 req/s; labelled "283.1 req/s mean", the table read as the server 35 % short)."""
    mean = f"{rate_rps:.4g} req/s mean"
    if offered_rps is None or not rate_rps:
        return mean
    if abs(offered_rps - rate_rps) <= MEAN_TOLERANCE * rate_rps:
        return mean
    return f"{offered_rps:.4g} req/s offered, part of a pass of {mean}"
