"""Why a step's window measured nothing, in its one line: an open loop's schedule that offered no arrival (--rate 0.1
poisson over 12 s draws none one run in three, 1.2 expected) is no fault of the server's, yet "no request completed"
read as one. Shared by loadtest's exit status (`quantserve.cli.loadtest_status`) and the verdict
(`loadtest.verdict.load_failures`).
"""

from __future__ import annotations

from loadtest.results import LoadResult


def nothing_measured(result: LoadResult) -> str:
    """`result`'s window (one that measured nothing), said by why: the schedule offered no
    arrival in it (with the count its rate expected), or none of those sent completed."""
    window = f"its {result.window_s:.1f} s window"
    if result.mode != "open" or result.offered_requests != 0:
        return f"no request completed in {window}"
    expected = f" ({_expected(result):.2g} expected at its rate)" if result.rate_rps else ""
    return f"the schedule offered no arrival in {window}{expected}, so no request was sent"


def _expected(result: LoadResult) -> float:
    """The arrivals an open loop's rate expected over the span the schedule offered them in."""
    return (result.rate_rps or 0.0) * (result.offered_window_s or result.window_s)
