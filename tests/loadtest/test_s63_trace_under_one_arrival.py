"""A trace replay whose window offers no arrival is refused before the run, as `--rate` is; and Triton's percentiles
are never set beside a client that measured nothing (session 63, probe F).

An Azure Functions day (2884 arrivals over 24 h, the first 38 s in) with `--duration 1s` planned "offer 0 arrivals",
ran, ended "nothing measured", exit 1, and its notes read "the client's p50 nan ms, p99 nan ms; Triton's p99 is nan ms
above the client's".
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadtest.load_pattern import TraceReplay
from loadtest.load_settings import LoadSettings
from loadtest.server_figure_notes import ClientPercentiles, server_percentiles_note
from loadtest.triton_metrics import ServerBreakdown
from quantserve.errors import QuantserveError


def _late_trace(tmp_path: Path) -> Path:
    """A counted trace whose first arrival comes in its second interval, 10–20 s in: 4 arrivals over 30 s."""
    path = tmp_path / "late.csv"
    path.write_text("time,count\n0,0\n10,2\n20,2\n")
    return path


def test_a_trace_window_without_an_arrival_is_refused_before_the_run(tmp_path: Path) -> None:
    pattern = TraceReplay(str(_late_trace(tmp_path)))
    first = float(pattern.trace.offsets_s[0])
    enough = math.floor(first) + 1
    settings = LoadSettings("127.0.0.1:1", "mlp", tmp_path / "absent.npz", pattern, duration_s=1.0)
    with pytest.raises(QuantserveError) as refused:
        settings.check()  # before the data is read: nothing else is looked at
    assert str(refused.value) == (
        f"--trace {pattern.trace.source} over --duration 1s offers no arrival (the trace's mean 0.133 req/s, its "
        f"first arrival {first:.3g} s in): raise --duration to at least {enough}s or --trace-speed"
    )
    assert pattern.trace.arrivals_within(enough) >= 1


def test_a_trace_window_with_an_arrival_is_not_refused(tmp_path: Path) -> None:
    pattern = TraceReplay(str(_late_trace(tmp_path)))
    settings = LoadSettings("127.0.0.1:1", "mlp", tmp_path / "absent.npz", pattern, duration_s=30.0)
    with pytest.raises(QuantserveError, match=r"absent\.npz"):  # past the arrivals' check, to the data's
        settings.check()


def test_a_client_that_measured_nothing_gets_no_nan_beside_tritons_percentiles() -> None:
    server = ServerBreakdown(1, 0, 1, 1, 1.0, 1300.0, 10.0, 1.0, 1.0, 1.0, request_p50_us=1300.0, request_p99_us=2500.0)
    note = server_percentiles_note("mlp", server, ClientPercentiles(math.nan, math.nan, 1.0))
    assert note is not None and "nan" not in note
    assert "p50 1.3 ms, p99 2.5 ms; the client measured no request to set beside them" in note
