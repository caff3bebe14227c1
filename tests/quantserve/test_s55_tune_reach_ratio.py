"""Tune's stop on an SLO out of reach says by how much it is missed.

Measured (session 55): `tune --slo-p99-ms 0.05` explained a fastest request of 15.62 ms as "over 2x the SLO": it
is 312x.
"""

from __future__ import annotations

from pathlib import Path

from test_tune import _measured, settings_for

from quantserve.cli.tune_reach import out_of_reach


def test_the_real_ratio_to_the_slo_is_said(tmp_path: Path) -> None:
    tight = settings_for(tmp_path, {"": tmp_path}, slo_p99_ms=0.05)
    assert out_of_reach(tight, [_measured("", fastest_ms=15.62)]) == (  # its compute time 15.62 ms too
        "its model computes a 1-row request (--request-batch) in 15.62 ms in Triton, 312x the 0.05 ms SLO "
        "(Triton's compute time per "
        "execution: trial 1, no batching x1), and no configuration serves a request faster than its model computes "
        "it; the fastest of 400 requests took 15.62 ms"
    )
    near = settings_for(tmp_path, {"": tmp_path}, slo_p99_ms=1.0)
    assert "in 2.50 ms in Triton, 2.5x the 1 ms SLO (" in out_of_reach(near, [_measured("", fastest_ms=2.5)])
