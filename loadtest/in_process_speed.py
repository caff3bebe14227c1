"""The verdict's INT8-vs-FP32 in-process speed: the build's own timing, with what it cannot vouch for.

The figure is the one `quantserve optimize` timed and recorded in the build's manifest (read with `--build`), or the
one `deploy` copied from it into the served config (`serving.build_parameters.SPEED_PARAMETER`, kept with each run).
Where other processes took over BUSY_SHARE of the cores while it was timed, it carries a caveat, as the served ratio
does (`loadtest.served_speed`). Session 52's probe: optimize said "INT8 was timed at 3.07× FP32 while other
processes took 50% of the cores: that figure is uncertain", and the report read "PASS · … · 3.07× in-process" and
the demo "3.07× in-process" with no word of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimizer.cpu_clock import BUSY_SHARE

CAVEATS_KEY = "caveats"  # an in-process entry's caveats, beside its speed record's own keys


CPU_TIME = "CPU time"  # `optimizer.speed_blocks.CPU_TIME`: the basis of a figure judged on a busy machine


def in_process_entry(model: str, speed: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """The verdict's record of one model's in-process speed: its speed record, named, with where it was read from
    (`source`, e.g. "its deployment"; none for a build given) and its caveats. Where CPU time decided (a busy
    machine, `optimizer.speed_blocks`), its figure is the speedup and the wall clock's is kept beside it
    (`wall_speedup`): the report read "4.42× in-process" where 3.13× by CPU time had decided (probe 65E)."""
    read_from = {"from": source} if source else {}
    return {"model": model, **decided_speed(speed), **read_from, CAVEATS_KEY: in_process_caveats(speed)}


def decided_speed(speed: Mapping[str, Any]) -> dict[str, Any]:
    """`speed` with the figure that decided as its speedup: CPU time's where it decided, the wall clock's else."""
    cpu = speed.get("cpu_speedup")
    if speed.get("basis") != CPU_TIME or not isinstance(cpu, int | float) or isinstance(cpu, bool):
        return dict(speed)
    return {**speed, "speedup": float(cpu), "wall_speedup": speed.get("speedup")}


def in_process_caveats(speed: Mapping[str, Any]) -> list[str]:
    """E.g. ["others took 50% of the cores while optimize timed it"]: the record says it was timed on a busy machine
    (`optimizer.speed.SpeedRecord.busy`, or its share of others' CPU over BUSY_SHARE); none where it does not."""
    share = speed.get("others_share")
    share = float(share) if isinstance(share, int | float) and not isinstance(share, bool) else None
    if not (speed.get("busy") or (share is not None and share > BUSY_SHARE)):
        return []
    took = f"over {BUSY_SHARE:.0%}" if share is None else f"{share:.0%}"  # a record with the flag but not the share
    said = f"others took {took} of the cores while optimize timed it"
    wall = speed.get("speedup")
    if decided_speed(speed).get("wall_speedup") is not None and isinstance(wall, int | float):
        said += f": judged by CPU time ({wall:.2f}× by the wall clock)"
    return [said]
