"""When no configuration can meet the p99 SLO: the fastest request of every build is already far slower than it.

A request is never served faster than its model computes it alone: dynamic batching adds the queue delay and a
larger batch's compute, more instances split the same cores. So once each build (FP32, INT8) has been measured,
an SLO below REACH_FACTOR of the fastest request any trial saw is out of reach, and the search stops there. It had
spent every trial, the confirmation and its windows first (`tune --slo-p99-ms 0.001`: all its trials, then "no
configuration met the 0.001 ms p99 SLO"). The factor leaves room for a quieter moment of a shared machine: the
fastest request is one sample, and a configuration's fastest moves by well under 2x between trials here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import Trial, TuneSettings

REACH_FACTOR = 0.5


def out_of_reach(settings: TuneSettings, trials: list[Trial]) -> str:
    """Why no configuration can meet the SLO, once every build has a measured trial; "" while one still might."""
    measured = [t for t in trials if not t.error and t.requests and not math.isnan(t.fastest_ms)]
    if not measured or {t.config.precision for t in measured} != set(settings.labels()):
        return ""  # a build not measured yet may be the faster one
    fastest = min(t.fastest_ms for t in measured)
    if settings.slo_p99_ms >= REACH_FACTOR * fastest:
        return ""
    requests = sum(t.requests for t in measured)
    return (
        f"the fastest of {requests} requests took {fastest:.2f} ms, over {1 / REACH_FACTOR:g}x the SLO, and no "
        "configuration serves a request faster than its model computes it alone"
    )
